//! What a client sends, taken apart in one place, with every refusal in the
//! one error shape: JSON bodies ([`Json`]), query strings ([`Query`]) and path
//! parameters ([`Path`]) in place of axum's own extractors, whose rejections
//! answer `text/plain` and can name the Rust type a body was meant for.
//!
//! Every string a JSON body holds (object keys too) is checked here for
//! control characters before any handler sees it: PostgreSQL refuses NUL in
//! text, and the other C0/C1 controls have no place in a name, an e-mail or a
//! title. Tab, line feed and carriage return are let through (descriptions
//! span lines); a field that must be one line says so itself.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Whether `c` may appear in text a client sends.
pub fn allowed_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// A JSON body: `application/json`, well-formed, of the expected shape, no
/// control characters in any string. Refusals: 415 without the content type,
/// 400 for malformed JSON, 413 past the body limit, 422 naming the field for
/// a wrong type, a missing field or a control character.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest("the request body could not be read".into())
                }
            })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {}", syntax(&e))))?;
        check_text(&value, &mut String::new())?;
        from_value(value).map(Json)
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5
                    && mime.to_ascii_lowercase().starts_with("application/")
                    && mime.to_ascii_lowercase().ends_with("+json"))
        })
}

/// Where in the body and what: serde_json's message without the line and
/// column of an error in data (the client knows its own body).
fn syntax(e: &serde_json::Error) -> String {
    format!("{} at line {} column {}", category(e), e.line(), e.column())
}

fn category(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of input",
        Category::Syntax => "syntax error",
        Category::Data | Category::Io => "invalid data",
    }
}

/// Refuses a control character in any string or key of `value`, naming where.
fn check_text(value: &serde_json::Value, path: &mut String) -> Result<(), ApiError> {
    let at = |path: &str| {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.to_string()
        }
    };
    match value {
        serde_json::Value::String(s) if !s.chars().all(allowed_char) => Err(ApiError::BadField {
            field: at(path),
            message: "must not contain control characters".into(),
        }),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_text(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                if !key.chars().all(allowed_char) {
                    return Err(ApiError::BadField {
                        field: at(path),
                        message: "a key contains control characters".into(),
                    });
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_text(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The body as `T`, or 422 naming the field that does not fit.
fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    let whole_is_object = value.is_object();
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let (field, message) = if !whole_is_object {
            // Every body bulkhead takes is an object (serde would read an
            // array into a struct's fields by position).
            ("body".to_string(), "must be a JSON object".to_string())
        } else if field == "." || field.is_empty() {
            ("body".to_string(), clean(&e.inner().to_string()))
        } else {
            (field, clean(&e.inner().to_string()))
        };
        ApiError::BadField { field, message }
    })
}

/// serde's message, minus anything naming a Rust type (`expected struct
/// NewProject`) and the position.
fn clean(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    for (marker, plain) in [
        ("expected struct", "expected a JSON object"),
        ("expected enum", "expected one of the documented values"),
        ("expected tuple struct", "expected a value of another type"),
    ] {
        if let Some(i) = message.find(marker) {
            return format!("{}{plain}", &message[..i]);
        }
    }
    message.to_string()
}

/// A query string of the expected shape; 422 naming the parameter otherwise.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        // A query of printable ASCII with nothing percent- or plus-encoded
        // cannot decode to a control character (the usual case: no pass
        // over the decoded pairs just to check).
        let plain = query
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'%' && b != b'+');
        let pairs = form_urlencoded::parse(query.as_bytes());
        if !plain
            && pairs
                .clone()
                .any(|(k, v)| !k.chars().chain(v.chars()).all(allowed_char))
        {
            return Err(ApiError::BadField {
                field: "query".into(),
                message: "must not contain control characters".into(),
            });
        }
        // The plain parse first; only a refusal is parsed again to name the
        // parameter at fault.
        if let Ok(value) = serde_urlencoded::from_str(query) {
            return Ok(Query(value));
        }
        let deserializer = serde_urlencoded::Deserializer::new(pairs);
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(value) => Ok(Query(value)),
            Err(e) => {
                let field = e.path().to_string();
                Err(ApiError::BadField {
                    field: if field == "." { "query".into() } else { field },
                    message: clean(&e.inner().to_string()),
                })
            }
        }
    }
}

/// Path parameters of the expected type: anything else names nothing that
/// exists, so it is the same 404 as an id that is not there.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|_| ApiError::NotFound)
    }
}

/// A row id in a path: a positive integer (anything else is not found).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowId(pub i64);

impl<'de> serde::Deserialize<'de> for RowId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(RowId)
            .ok_or_else(|| serde::de::Error::custom("not an id"))
    }
}

impl std::fmt::Display for RowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_anywhere_and_named() {
        let body = serde_json::json!({"name": "ok\ttab\nline", "tags": ["a", "b\u{0}"]});
        match check_text(&body, &mut String::new()) {
            Err(ApiError::BadField { field, .. }) => assert_eq!(field, "tags[1]"),
            other => panic!("{other:?}"),
        }
        let nested = serde_json::json!({"a": {"b": "\u{1b}[31m"}});
        match check_text(&nested, &mut String::new()) {
            Err(ApiError::BadField { field, .. }) => assert_eq!(field, "a.b"),
            other => panic!("{other:?}"),
        }
        assert!(check_text(&serde_json::json!({"d": "é\r\n\t"}), &mut String::new()).is_ok());
        assert!(!allowed_char('\u{85}'), "C1 controls too");
    }

    #[test]
    fn messages_never_name_a_rust_type() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct NewProject {
            name: String,
        }
        for body in [serde_json::json!("a string"), serde_json::json!([1])] {
            let e = from_value::<NewProject>(body).unwrap_err();
            assert!(!format!("{e:?}").contains("NewProject"), "{e:?}");
        }
        match from_value::<NewProject>(serde_json::json!({"name": 5})) {
            Err(ApiError::BadField { field, message }) => {
                assert_eq!(field, "name");
                assert!(message.contains("expected a string"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
