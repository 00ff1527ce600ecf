//! One conformance suite: every scenario runs on the embedded backend (SQLite and the local
//! workflow engine) and on the AWS adapters (DynamoDB, SQS and Step Functions on moto in server
//! mode, which the test command starts). Same scenarios, same assertions.

mod ports;
mod provisioning;
