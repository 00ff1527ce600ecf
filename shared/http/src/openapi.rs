//! OpenAPI answers that several operations share, for their `#[utoipa::path]` annotations
//! (`responses(SomeAnswers, (status = 200, ...))`): each set is written once.

use std::collections::BTreeMap;

use utoipa::openapi::content::Content;
use utoipa::openapi::{RefOr, Response, ResponseBuilder};

/// The answers `(status, description)`: a success has no schema here (the operation's own
/// tuple documents it), a 4xx or 5xx is `application/problem+json`.
pub fn responses(answers: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    answers
        .iter()
        .map(|&(status, description)| {
            let mut response = ResponseBuilder::new().description(description);
            if status >= 400 {
                response = response.content("application/problem+json", Content::default());
            }
            (status.to_string(), RefOr::T(response.build()))
        })
        .collect()
}

/// Defines a unit struct whose `IntoResponses` is `answers`.
#[macro_export]
macro_rules! shared_answers {
    ($(#[$doc:meta])* $vis:vis $name:ident = [$(($status:literal, $description:literal)),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug)]
        $vis struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses(
            ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
                $crate::openapi::responses(&[$(($status, $description)),*])
            }
        }
    };
}
