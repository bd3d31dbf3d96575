//! Request parameters the way Telegram-style APIs take them: from the query string, a
//! JSON body, a form body or a multipart body, merged into one map. Query, form and
//! multipart values are strings, JSON values keep their types, so the readers accept both
//! `5` and `"5"`, and a JSON object or array given as a string (`prices='[...]'` in a
//! form, `reply_markup` in a multipart upload) is parsed. Multipart parts that carry a
//! file name are kept aside as uploads.

use axum::extract::{FromRequest, Multipart};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One request's parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    values: Map<String, Value>,
    uploads: HashMap<String, Upload>,
}

/// A file part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upload {
    /// The part's `filename`.
    pub(crate) file_name: Option<String>,
    /// The part's `Content-Type`.
    pub(crate) content_type: Option<String>,
    /// The file.
    pub(crate) bytes: Vec<u8>,
}

/// A parameter is present but has the wrong type; carries the parameter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadParam(pub String);

impl Params {
    /// Merges the query string and the body (JSON or form-urlencoded; body wins).
    pub(crate) fn from_request(
        headers: &HeaderMap,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Self, String> {
        let mut map = Map::new();
        Self::add_query(&mut map, query);
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::from_map(map));
        }
        let content_type = content_type(headers);
        if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => map.extend(m),
                Ok(_) => return Err("the JSON body is not an object".into()),
                Err(e) => return Err(format!("can't parse JSON body: {e}")),
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in url::form_urlencoded::parse(body) {
                map.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        } else {
            return Err(format!("unsupported content type `{content_type}`"));
        }
        Ok(Self::from_map(map))
    }

    /// Like [`Params::from_request`], and also takes `multipart/form-data` bodies (how
    /// clients upload files): text parts become string values, parts with a file name
    /// (or a non-text content type) become uploads under the part's name.
    pub(crate) async fn from_any_request(
        headers: &HeaderMap,
        query: Option<&str>,
        body: axum::body::Bytes,
    ) -> Result<Self, String> {
        let content_type = content_type(headers);
        if !content_type.starts_with("multipart/form-data") {
            return Self::from_request(headers, query, &body);
        }
        let mut map = Map::new();
        Self::add_query(&mut map, query);
        let mut uploads = HashMap::new();
        let request = axum::http::Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(axum::body::Body::from(body))
            .map_err(|e| format!("can't read multipart body: {e}"))?;
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| format!("can't parse multipart body: {}", e.body_text()))?;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| format!("can't parse multipart body: {e}"))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let part_type = field.content_type().map(str::to_owned);
            let bytes = field
                .bytes()
                .await
                .map_err(|e| format!("can't parse multipart body: {e}"))?;
            let is_file = file_name.is_some()
                || part_type
                    .as_deref()
                    .is_some_and(|t| !t.starts_with("text/plain"));
            if is_file {
                uploads.insert(
                    name,
                    Upload {
                        file_name,
                        content_type: part_type,
                        bytes: bytes.to_vec(),
                    },
                );
            } else {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("multipart field `{name}` is not UTF-8 text"))?;
                map.insert(name, Value::String(text));
            }
        }
        Ok(Self {
            values: map,
            uploads,
        })
    }

    fn from_map(values: Map<String, Value>) -> Self {
        Self {
            values,
            uploads: HashMap::new(),
        }
    }

    fn add_query(map: &mut Map<String, Value>, query: Option<&str>) {
        if let Some(q) = query {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                map.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }

    /// The upload in the multipart part `name`.
    pub(crate) fn upload(&self, name: &str) -> Option<&Upload> {
        self.uploads.get(name)
    }

    /// The value, treating JSON `null` as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// All parameters (to record what a client sent).
    pub(crate) fn to_value(&self) -> Value {
        Value::Object(self.values.clone())
    }

    /// A string; numbers and booleans are rendered as text.
    pub(crate) fn str(&self, key: &str) -> Result<Option<String>, BadParam> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(BadParam(key.into())),
        }
    }

    /// An integer, from a JSON number or a decimal string.
    pub(crate) fn i64(&self, key: &str) -> Result<Option<i64>, BadParam> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| BadParam(key.into())),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| BadParam(key.into())),
            Some(_) => Err(BadParam(key.into())),
        }
    }

    /// A boolean, from JSON or `true`/`false`/`1`/`0` text.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, BadParam> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(BadParam(key.into())),
            },
            Some(Value::Number(n)) => match n.as_i64() {
                Some(1) => Ok(Some(true)),
                Some(0) => Ok(Some(false)),
                _ => Err(BadParam(key.into())),
            },
            Some(_) => Err(BadParam(key.into())),
        }
    }

    /// A JSON array or object, given as JSON or as a string holding JSON.
    pub(crate) fn json(&self, key: &str) -> Result<Option<Value>, BadParam> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(|v| v.is_array() || v.is_object())
                .map(Some)
                .ok_or_else(|| BadParam(key.into())),
            Some(v @ (Value::Array(_) | Value::Object(_))) => Ok(Some(v.clone())),
            Some(_) => Err(BadParam(key.into())),
        }
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(ct) {
            h.insert(axum::http::header::CONTENT_TYPE, v);
        }
        h
    }

    #[test]
    fn merges_query_json_and_form() {
        let p = Params::from_request(
            &headers("application/json"),
            Some("a=1&b=x"),
            br#"{"b": 2, "c": [1], "d": null}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.i64("a"), Ok(Some(1)));
        assert_eq!(p.i64("b"), Ok(Some(2)));
        assert_eq!(p.json("c"), Ok(Some(serde_json::json!([1]))));
        assert_eq!(p.str("d"), Ok(None));
        let f = Params::from_request(
            &headers("application/x-www-form-urlencoded"),
            None,
            b"ok=false&prices=%5B%7B%22amount%22%3A1%7D%5D",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.bool("ok"), Ok(Some(false)));
        assert_eq!(
            f.json("prices"),
            Ok(Some(serde_json::json!([{"amount": 1}])))
        );
        assert_eq!(f.i64("ok"), Err(BadParam("ok".into())));
        assert!(Params::from_request(&headers("text/plain"), None, b"x").is_err());
        assert!(Params::from_request(&headers("application/json"), None, b"[1]").is_err());
    }
}
