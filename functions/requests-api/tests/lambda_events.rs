//! The sample API Gateway v2 event in `events/` reads as the request the router expects, with
//! the authorizer's claims copied in.

use paved_http::GatewayClaims;
use paved_http::lambda::copy_authorizer_claims;

#[test]
fn the_submit_sample_is_an_authorized_post_of_a_request() {
    let request = lambda_http::request::from_str(include_str!(
        "../../../events/requests-api.apigw.submit.json"
    ))
    .expect("an API Gateway v2 event");
    let request = copy_authorizer_claims(request);
    assert_eq!(request.method(), "POST");
    assert_eq!(request.uri().path(), "/v1/requests");
    assert_eq!(request.headers()["idempotency-key"], "3f2b7c1e-orders-db");
    let claims = request.extensions().get::<GatewayClaims>().expect("claims");
    assert!(!claims.sub.is_empty());
    let body: serde_json::Value =
        serde_json::from_slice(request.body().as_ref()).expect("json body");
    assert_eq!(body["template"], "postgres-database");
}
