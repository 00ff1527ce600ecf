//! What the template's IAM lets each function do with the platform table: generated
//! credentials (the `SECRET` partition) are written and read by the provision worker only.

use serde_yaml::Value;

fn leading_keys(statement: &Value) -> Option<Vec<String>> {
    let condition = statement.get("Condition")?;
    let keys = condition
        .as_mapping()?
        .values()
        .find_map(|c| c.get("dynamodb:LeadingKeys"))?;
    Some(
        keys.as_sequence()?
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
    )
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Sequence(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn only_the_provision_worker_may_touch_generated_credentials() {
    let doc: Value = serde_yaml::from_str(paved_aws::stack::TEMPLATE).expect("the template");
    let mut checked = 0;
    for (name, resource) in doc["Resources"].as_mapping().expect("resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().expect("name");
        let statements: Vec<&Value> = resource["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("Statement").and_then(Value::as_sequence))
            .flatten()
            .collect();
        let denies_secrets = statements.iter().any(|s| {
            s["Effect"] == "Deny"
                && actions(s).iter().any(|a| a == "dynamodb:*")
                && leading_keys(s).is_some_and(|k| k == ["SECRET"])
        });
        // Every Allow on the table either names its partitions (none of them SECRET) or is
        // overruled by the Deny.
        let reaches_secrets = statements.iter().any(|s| {
            s["Effect"] == "Allow"
                && actions(s).iter().any(|a| a.starts_with("dynamodb:"))
                && leading_keys(s).is_none_or(|k| k.iter().any(|k| k == "SECRET"))
                && !actions(s).iter().all(|a| {
                    // Table management for the DynamoDB driver, not item access.
                    matches!(
                        a.as_str(),
                        "dynamodb:CreateTable"
                            | "dynamodb:DescribeTable"
                            | "dynamodb:DeleteTable"
                            | "dynamodb:TagResource"
                            | "dynamodb:UntagResource"
                            | "dynamodb:ListTagsOfResource"
                            | "dynamodb:UpdateContinuousBackups"
                    )
                })
        });
        if name == "ProvisionWorkerFunction" {
            assert!(
                !denies_secrets,
                "the worker writes the credentials it generates"
            );
            assert!(reaches_secrets, "the worker reaches the table");
        } else {
            assert!(
                denies_secrets || !reaches_secrets,
                "{name} may read generated credentials: deny it the SECRET partition"
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked} functions checked");
}
