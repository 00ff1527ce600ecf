//! The data-flow language of ASL that paved's engine supports: reference paths (`$.a.b[0]`,
//! `$$.Task.Token`), payload templates (`"key.$": path or intrinsic`), and the intrinsic
//! functions. Everything is parsed when the definition loads, so a bad path or an unknown
//! intrinsic is refused up front rather than failing an execution halfway.

use serde_json::{Map, Value};

/// One segment of a reference path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Index(usize),
}

/// A reference path over the state input (`$…`) or the context object (`$$…`).
#[derive(Debug, Clone, PartialEq)]
pub struct RefPath {
    context: bool,
    segments: Vec<Segment>,
}

impl RefPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (context, mut rest) = if let Some(r) = text.strip_prefix("$$") {
            (true, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (false, r)
        } else {
            return Err(format!("path {text:?} must start with $ or $$"));
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() || name.contains(['*', '?', '@', ' ', '(', ')']) {
                    return Err(format!(
                        "path {text:?}: only plain field names and [index] are supported"
                    ));
                }
                segments.push(Segment::Field(name.to_owned()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| format!("path {text:?}: unclosed ["))?;
                let inner = &r[..end];
                if let Some(quoted) = inner.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
                    segments.push(Segment::Field(quoted.to_owned()));
                } else {
                    let index = inner.parse::<usize>().map_err(|_| {
                        format!(
                            "path {text:?}: [{inner}] is not supported (use a number or a 'name')"
                        )
                    })?;
                    segments.push(Segment::Index(index));
                }
                rest = &r[end + 1..];
            } else {
                return Err(format!("path {text:?} is not a reference path"));
            }
        }
        Ok(Self { context, segments })
    }

    /// The value at the path, or `None` when it does not exist (a `States.Runtime` error).
    pub fn get<'a>(&self, input: &'a Value, context: &'a Value) -> Option<&'a Value> {
        let mut at = if self.context { context } else { input };
        for segment in &self.segments {
            at = match segment {
                Segment::Field(name) => at.as_object()?.get(name)?,
                Segment::Index(i) => at.as_array()?.get(*i)?,
            };
        }
        Some(at)
    }

    /// Writes `value` at the path inside `target` (ResultPath), creating objects on the way.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), String> {
        if self.context {
            return Err("ResultPath cannot point into the context object".into());
        }
        let mut at = target;
        for segment in &self.segments {
            at = match segment {
                Segment::Field(name) => {
                    if !at.is_object() {
                        *at = Value::Object(Map::new());
                    }
                    at.as_object_mut()
                        .ok_or("unreachable: not an object")?
                        .entry(name.clone())
                        .or_insert(Value::Null)
                }
                Segment::Index(i) => at
                    .as_array_mut()
                    .and_then(|a| a.get_mut(*i))
                    .ok_or_else(|| format!("ResultPath index [{i}] does not exist"))?,
            };
        }
        *at = value;
        Ok(())
    }
}

/// An expression inside a template: a path or an intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Path(RefPath),
    Literal(Value),
    Call(Intrinsic, Vec<Expr>),
}

/// The intrinsic functions the engine implements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intrinsic {
    Format,
    ArrayGetItem,
    ArrayLength,
    MathAdd,
    Array,
    ArrayContains,
    StringToJson,
    JsonToString,
}

impl Intrinsic {
    fn by_name(name: &str) -> Result<Self, String> {
        Ok(match name {
            "States.Format" => Self::Format,
            "States.ArrayGetItem" => Self::ArrayGetItem,
            "States.ArrayLength" => Self::ArrayLength,
            "States.MathAdd" => Self::MathAdd,
            "States.Array" => Self::Array,
            "States.ArrayContains" => Self::ArrayContains,
            "States.StringToJson" => Self::StringToJson,
            "States.JsonToString" => Self::JsonToString,
            other => {
                return Err(format!(
                    "the intrinsic function {other} is not supported by the embedded engine \
                     (supported: States.Format, States.ArrayGetItem, States.ArrayLength, \
                     States.MathAdd, States.Array, States.ArrayContains, States.StringToJson, \
                     States.JsonToString)"
                ));
            }
        })
    }
}

impl Expr {
    /// Parses the value of a `key.$` field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parser = Parser { text, at: 0 };
        let expr = parser.expr()?;
        parser.skip_spaces();
        if parser.at != text.len() {
            return Err(format!("{text:?}: unexpected text at {}", parser.at));
        }
        match expr {
            Expr::Literal(_) => Err(format!(
                "{text:?} must be a path or an intrinsic function call"
            )),
            e => Ok(e),
        }
    }

    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, String> {
        match self {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Path(p) => p
                .get(input, context)
                .cloned()
                .ok_or_else(|| "a path in the template matched nothing".to_owned()),
            Expr::Call(f, args) => {
                let args = args
                    .iter()
                    .map(|a| a.eval(input, context))
                    .collect::<Result<Vec<_>, _>>()?;
                call(*f, args)
            }
        }
    }
}

fn call(f: Intrinsic, args: Vec<Value>) -> Result<Value, String> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{f:?} takes {n} arguments, got {}", args.len()))
        }
    };
    match f {
        Intrinsic::Format => {
            let Some(Value::String(template)) = args.first() else {
                return Err("States.Format needs a template string first".into());
            };
            let mut out = String::new();
            let mut rest = args[1..].iter();
            let mut chars = template.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '{' && chars.peek() == Some(&'}') {
                    chars.next();
                    let v = rest
                        .next()
                        .ok_or("States.Format has more {} than arguments")?;
                    match v {
                        Value::String(s) => out.push_str(s),
                        Value::Object(_) | Value::Array(_) => {
                            return Err("States.Format arguments must be scalars".into());
                        }
                        other => out.push_str(&other.to_string()),
                    }
                } else {
                    out.push(c);
                }
            }
            if rest.next().is_some() {
                return Err("States.Format has more arguments than {}".into());
            }
            Ok(Value::String(out))
        }
        Intrinsic::ArrayGetItem => {
            arity(2)?;
            let index = args[1]
                .as_u64()
                .ok_or("States.ArrayGetItem needs a non-negative integer index")?;
            args[0]
                .as_array()
                .ok_or("States.ArrayGetItem needs an array")?
                .get(usize::try_from(index).map_err(|e| e.to_string())?)
                .cloned()
                .ok_or_else(|| format!("States.ArrayGetItem: index {index} is out of bounds"))
        }
        Intrinsic::ArrayLength => {
            arity(1)?;
            Ok(Value::from(
                args[0]
                    .as_array()
                    .ok_or("States.ArrayLength needs an array")?
                    .len(),
            ))
        }
        Intrinsic::MathAdd => {
            arity(2)?;
            let a = args[0].as_i64().ok_or("States.MathAdd needs integers")?;
            let b = args[1].as_i64().ok_or("States.MathAdd needs integers")?;
            Ok(Value::from(
                a.checked_add(b).ok_or("States.MathAdd overflowed")?,
            ))
        }
        Intrinsic::Array => Ok(Value::Array(args)),
        Intrinsic::ArrayContains => {
            arity(2)?;
            Ok(Value::Bool(
                args[0]
                    .as_array()
                    .ok_or("States.ArrayContains needs an array")?
                    .contains(&args[1]),
            ))
        }
        Intrinsic::StringToJson => {
            arity(1)?;
            let s = args[0]
                .as_str()
                .ok_or("States.StringToJson needs a string")?;
            serde_json::from_str(s).map_err(|e| format!("States.StringToJson: {e}"))
        }
        Intrinsic::JsonToString => {
            arity(1)?;
            Ok(Value::String(args[0].to_string()))
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.skip_spaces();
        let rest = self.rest();
        if rest.starts_with('$') {
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            let path = rest[..end].trim_end();
            self.at += end;
            return Ok(Expr::Path(RefPath::parse(path)?));
        }
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        let (_, escaped) = chars
                            .next()
                            .ok_or_else(|| format!("{:?}: dangling \\", self.text))?;
                        out.push(escaped);
                    }
                    '\'' => {
                        self.at += i + 2;
                        return Ok(Expr::Literal(Value::String(out)));
                    }
                    c => out.push(c),
                }
            }
            return Err(format!("{:?}: unterminated string", self.text));
        }
        if rest.starts_with("States.") {
            let open = rest
                .find('(')
                .ok_or_else(|| format!("{:?}: expected (", self.text))?;
            let function = Intrinsic::by_name(&rest[..open])?;
            self.at += open + 1;
            let mut args = Vec::new();
            self.skip_spaces();
            if self.rest().starts_with(')') {
                self.at += 1;
                return Ok(Expr::Call(function, args));
            }
            loop {
                args.push(self.expr()?);
                self.skip_spaces();
                let rest = self.rest();
                if rest.starts_with(',') {
                    self.at += 1;
                } else if rest.starts_with(')') {
                    self.at += 1;
                    return Ok(Expr::Call(function, args));
                } else {
                    return Err(format!("{:?}: expected , or ) at {}", self.text, self.at));
                }
            }
        }
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        let literal = rest[..end].trim();
        let value: Value = serde_json::from_str(literal)
            .map_err(|_| format!("{:?}: cannot read {literal:?}", self.text))?;
        if value.is_object() || value.is_array() {
            return Err(format!(
                "{:?}: literal {literal:?} must be a scalar",
                self.text
            ));
        }
        self.at += end;
        Ok(Expr::Literal(value))
    }
}

/// A payload template (Parameters, ResultSelector, ItemSelector): JSON whose `key.$` fields
/// are computed from the input and the context.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Computed(Expr),
}

impl Template {
    pub fn compile(value: &Value) -> Result<Self, String> {
        Ok(match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    if let Some(name) = key.strip_suffix(".$") {
                        let text = v
                            .as_str()
                            .ok_or_else(|| format!("{key} must be a string path or intrinsic"))?;
                        let expr = Expr::parse(text).map_err(|e| format!("{key}: {e}"))?;
                        fields.push((name.to_owned(), Template::Computed(expr)));
                    } else {
                        fields.push((key.clone(), Template::compile(v)?));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(items) => Template::Array(
                items
                    .iter()
                    .map(Template::compile)
                    .collect::<Result<_, _>>()?,
            ),
            other => Template::Literal(other.clone()),
        })
    }

    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, String> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Computed(e) => e.eval(input, context)?,
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.eval(input, context))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    out.insert(k.clone(), t.eval(input, context)?);
                }
                Value::Object(out)
            }
        })
    }

    /// Whether any computed field reads `$$.Task.Token` (a callback task must pass it on).
    pub fn mentions_task_token(&self) -> bool {
        fn expr(e: &Expr) -> bool {
            match e {
                Expr::Path(p) => {
                    p.context
                        && p.segments
                            == [
                                Segment::Field("Task".into()),
                                Segment::Field("Token".into()),
                            ]
                }
                Expr::Literal(_) => false,
                Expr::Call(_, args) => args.iter().any(expr),
            }
        }
        match self {
            Template::Literal(_) => false,
            Template::Computed(e) => expr(e),
            Template::Array(items) => items.iter().any(Template::mentions_task_token),
            Template::Object(fields) => fields.iter().any(|(_, t)| t.mentions_task_token()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_read_and_write() {
        let input = json!({"a": {"b": [10, 20]}, "steps": ["x", "y"]});
        let ctx = json!({"Task": {"Token": "t"}});
        assert_eq!(
            RefPath::parse("$.a.b[1]").expect("p").get(&input, &ctx),
            Some(&json!(20))
        );
        assert_eq!(
            RefPath::parse("$$.Task.Token")
                .expect("p")
                .get(&input, &ctx),
            Some(&json!("t"))
        );
        assert_eq!(
            RefPath::parse("$['a']").expect("p").get(&input, &ctx),
            Some(&json!({"b": [10, 20]}))
        );
        assert!(RefPath::parse("$.a[*]").is_err());
        assert!(RefPath::parse("$..a").is_err());
        assert!(RefPath::parse("a.b").is_err());
        let mut target = json!({"keep": 1});
        RefPath::parse("$.x.y")
            .expect("p")
            .set(&mut target, json!(2))
            .expect("set");
        assert_eq!(target, json!({"keep": 1, "x": {"y": 2}}));
    }

    #[test]
    fn intrinsics_match_step_functions() {
        let input = json!({"requestId": "r1", "steps": ["db", "role"], "index": 1});
        let ctx = json!({});
        let eval = |s: &str| Expr::parse(s).expect(s).eval(&input, &ctx);
        assert_eq!(
            eval(
                "States.Format('{}/{}/apply', $.requestId, States.ArrayGetItem($.steps, $.index))"
            ),
            Ok(json!("r1/role/apply"))
        );
        assert_eq!(eval("States.ArrayLength($.steps)"), Ok(json!(2)));
        assert_eq!(eval("States.MathAdd($.index, -1)"), Ok(json!(0)));
        assert_eq!(
            eval("States.Format('it\\'s {}', $.index)"),
            Ok(json!("it's 1"))
        );
        assert_eq!(eval("States.Array($.index, 'a')"), Ok(json!([1, "a"])));
        assert_eq!(eval("States.ArrayContains($.steps, 'db')"), Ok(json!(true)));
        assert_eq!(
            eval("States.JsonToString($.steps)"),
            Ok(json!("[\"db\",\"role\"]"))
        );
        assert!(eval("States.ArrayGetItem($.steps, 5)").is_err());
        assert!(
            Expr::parse("States.Hash($.a, 'SHA-1')").is_err(),
            "unsupported intrinsic refused"
        );
        assert!(Expr::parse("'just a literal'").is_err());
    }

    #[test]
    fn templates_compute_dollar_fields() {
        let t = Template::compile(&json!({"token.$": "$$.Task.Token", "fixed": {"n": 1}, "list": ["$.no"], "id.$": "$.id"}))
            .expect("compile");
        assert!(t.mentions_task_token());
        let out = t
            .eval(&json!({"id": 7}), &json!({"Task": {"Token": "tok"}}))
            .expect("eval");
        assert_eq!(
            out,
            json!({"token": "tok", "fixed": {"n": 1}, "list": ["$.no"], "id": 7})
        );
        assert!(
            t.eval(&json!({}), &json!({"Task": {"Token": "tok"}}))
                .is_err(),
            "missing path is an error"
        );
    }
}
