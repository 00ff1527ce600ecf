//! Choice rules: the comparison operators of ASL over a variable, and And/Or/Not.

use serde::Deserialize;
use serde_json::Value;

use super::paths::RefPath;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChoiceRule {
    pub variable: Option<String>,
    pub next: Option<String>,
    pub comment: Option<String>,
    pub and: Option<Vec<ChoiceRule>>,
    pub or: Option<Vec<ChoiceRule>>,
    pub not: Option<Box<ChoiceRule>>,
    pub string_equals: Option<String>,
    pub string_equals_path: Option<String>,
    pub string_less_than: Option<String>,
    pub string_greater_than: Option<String>,
    pub string_matches: Option<String>,
    pub numeric_equals: Option<f64>,
    pub numeric_equals_path: Option<String>,
    pub numeric_less_than: Option<f64>,
    pub numeric_less_than_path: Option<String>,
    pub numeric_less_than_equals: Option<f64>,
    pub numeric_less_than_equals_path: Option<String>,
    pub numeric_greater_than: Option<f64>,
    pub numeric_greater_than_path: Option<String>,
    pub numeric_greater_than_equals: Option<f64>,
    pub numeric_greater_than_equals_path: Option<String>,
    pub boolean_equals: Option<bool>,
    pub boolean_equals_path: Option<String>,
    pub is_present: Option<bool>,
    pub is_null: Option<bool>,
    pub is_string: Option<bool>,
    pub is_numeric: Option<bool>,
    pub is_boolean: Option<bool>,
}

type NumCmp = fn(f64, f64) -> bool;
type KindTest = fn(Option<&Value>) -> bool;

/// The one comparison a rule makes.
enum Test<'a> {
    Str(&'a str, fn(&str, &str) -> bool),
    StrPath(&'a str),
    Num(f64, fn(f64, f64) -> bool),
    NumPath(&'a str, fn(f64, f64) -> bool),
    Bool(bool),
    BoolPath(&'a str),
    Matches(&'a str),
    Is(bool, fn(Option<&Value>) -> bool),
}

impl ChoiceRule {
    fn tests(&self) -> Vec<Test<'_>> {
        let mut t = Vec::new();
        if let Some(v) = &self.string_equals {
            t.push(Test::Str(v, |a, b| a == b));
        }
        if let Some(v) = &self.string_less_than {
            t.push(Test::Str(v, |a, b| a < b));
        }
        if let Some(v) = &self.string_greater_than {
            t.push(Test::Str(v, |a, b| a > b));
        }
        if let Some(v) = &self.string_equals_path {
            t.push(Test::StrPath(v));
        }
        if let Some(v) = &self.string_matches {
            t.push(Test::Matches(v));
        }
        let nums: [(Option<f64>, NumCmp); 5] = [
            (self.numeric_equals, |a, b| (a - b).abs() < f64::EPSILON),
            (self.numeric_less_than, |a, b| a < b),
            (self.numeric_less_than_equals, |a, b| a <= b),
            (self.numeric_greater_than, |a, b| a > b),
            (self.numeric_greater_than_equals, |a, b| a >= b),
        ];
        for (v, f) in nums {
            if let Some(v) = v {
                t.push(Test::Num(v, f));
            }
        }
        let num_paths: [(&Option<String>, NumCmp); 5] = [
            (&self.numeric_equals_path, |a, b| {
                (a - b).abs() < f64::EPSILON
            }),
            (&self.numeric_less_than_path, |a, b| a < b),
            (&self.numeric_less_than_equals_path, |a, b| a <= b),
            (&self.numeric_greater_than_path, |a, b| a > b),
            (&self.numeric_greater_than_equals_path, |a, b| a >= b),
        ];
        for (v, f) in num_paths {
            if let Some(v) = v {
                t.push(Test::NumPath(v, f));
            }
        }
        if let Some(v) = self.boolean_equals {
            t.push(Test::Bool(v));
        }
        if let Some(v) = &self.boolean_equals_path {
            t.push(Test::BoolPath(v));
        }
        let kinds: [(Option<bool>, KindTest); 5] = [
            (self.is_present, |v| v.is_some()),
            (self.is_null, |v| v.is_some_and(Value::is_null)),
            (self.is_string, |v| v.is_some_and(Value::is_string)),
            (self.is_numeric, |v| v.is_some_and(Value::is_number)),
            (self.is_boolean, |v| v.is_some_and(Value::is_boolean)),
        ];
        for (v, f) in kinds {
            if let Some(v) = v {
                t.push(Test::Is(v, f));
            }
        }
        t
    }

    /// Checks the rule's shape: one comparison with a Variable, or one combinator; `Next` only
    /// at the top level.
    pub fn validate(&self, top: bool) -> Result<(), String> {
        if top != self.next.is_some() {
            return Err(if top {
                "every choice needs a Next".into()
            } else {
                "a nested rule cannot have a Next".into()
            });
        }
        let combinators = [self.and.is_some(), self.or.is_some(), self.not.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        let tests = self.tests();
        match (combinators, tests.len()) {
            (1, 0) if self.variable.is_none() => {
                for rule in self.and.iter().chain(self.or.iter()).flatten() {
                    rule.validate(false)?;
                }
                if let Some(n) = &self.not {
                    n.validate(false)?;
                }
                Ok(())
            }
            (0, 1) => {
                let variable = self
                    .variable
                    .as_deref()
                    .ok_or("a comparison needs a Variable")?;
                RefPath::parse(variable)?;
                for test in tests {
                    match test {
                        Test::StrPath(p) | Test::NumPath(p, _) | Test::BoolPath(p) => {
                            RefPath::parse(p)?;
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            _ => Err(
                "a choice rule needs exactly one comparison operator (or And/Or/Not) \
                      among those the embedded engine supports"
                    .into(),
            ),
        }
    }

    pub fn matches(&self, input: &Value, context: &Value) -> bool {
        if let Some(all) = &self.and {
            return all.iter().all(|r| r.matches(input, context));
        }
        if let Some(any) = &self.or {
            return any.iter().any(|r| r.matches(input, context));
        }
        if let Some(not) = &self.not {
            return !not.matches(input, context);
        }
        let Some(variable) = self
            .variable
            .as_deref()
            .and_then(|v| RefPath::parse(v).ok())
        else {
            return false;
        };
        let value = variable.get(input, context);
        let at = |p: &str| {
            RefPath::parse(p)
                .ok()
                .and_then(|p| p.get(input, context).cloned())
        };
        self.tests().into_iter().any(|test| match test {
            Test::Is(want, f) => f(value) == want,
            Test::Str(b, f) => value.and_then(Value::as_str).is_some_and(|a| f(a, b)),
            Test::StrPath(p) => value
                .and_then(Value::as_str)
                .is_some_and(|a| at(p).as_ref().and_then(Value::as_str) == Some(a)),
            Test::Matches(pattern) => value
                .and_then(Value::as_str)
                .is_some_and(|a| glob(pattern, a)),
            Test::Num(b, f) => value.and_then(Value::as_f64).is_some_and(|a| f(a, b)),
            Test::NumPath(p, f) => match (
                value.and_then(Value::as_f64),
                at(p).as_ref().and_then(Value::as_f64),
            ) {
                (Some(a), Some(b)) => f(a, b),
                _ => false,
            },
            Test::Bool(b) => value.and_then(Value::as_bool) == Some(b),
            Test::BoolPath(p) => {
                let b = at(p).as_ref().and_then(Value::as_bool);
                b.is_some() && value.and_then(Value::as_bool) == b
            }
        })
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` is a literal star.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('\\', rest)) if !rest.is_empty() => {
                t.first() == Some(&rest[0]) && go(&rest[1..], &t[1..])
            }
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(v: Value) -> ChoiceRule {
        let r: ChoiceRule = serde_json::from_value(v).expect("rule");
        r.validate(true).expect("valid");
        r
    }

    #[test]
    fn comparisons_and_combinators() {
        let input = json!({"index": 1, "count": 3, "env": "production", "flag": true});
        let ctx = json!({});
        assert!(
            rule(json!({"Variable": "$.index", "NumericLessThanPath": "$.count", "Next": "x"}))
                .matches(&input, &ctx)
        );
        assert!(
            !rule(json!({"Variable": "$.index", "NumericGreaterThanEquals": 2, "Next": "x"}))
                .matches(&input, &ctx)
        );
        assert!(
            rule(json!({"Variable": "$.env", "StringMatches": "prod*", "Next": "x"}))
                .matches(&input, &ctx)
        );
        assert!(rule(json!({"And": [{"Variable": "$.flag", "BooleanEquals": true}, {"Not": {"Variable": "$.missing", "IsPresent": true}}], "Next": "x"})).matches(&input, &ctx));
        assert!(
            !rule(json!({"Variable": "$.missing", "StringEquals": "a", "Next": "x"}))
                .matches(&input, &ctx)
        );
    }

    #[test]
    fn unsupported_or_malformed_rules_are_refused() {
        let r: Result<ChoiceRule, _> = serde_json::from_value(
            json!({"Variable": "$.t", "TimestampEquals": "2020-01-01T00:00:00Z", "Next": "x"}),
        );
        assert!(
            r.is_err(),
            "an operator outside the subset is refused at load"
        );
        let two: ChoiceRule = serde_json::from_value(
            json!({"Variable": "$.a", "StringEquals": "a", "NumericEquals": 1, "Next": "x"}),
        )
        .expect("parse");
        assert!(two.validate(true).is_err());
        let no_next: ChoiceRule =
            serde_json::from_value(json!({"Variable": "$.a", "StringEquals": "a"})).expect("parse");
        assert!(no_next.validate(true).is_err());
    }
}
