//! Request parameters the way Telegram-style APIs take them: from the query string, a
//! JSON body or a form body, merged into one map. Query and form values are strings,
//! JSON values keep their types, so the readers accept both `5` and `"5"`, and a JSON
//! object or array given as a string (`prices='[...]'` in a form) is parsed.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// One request's parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Map<String, Value>);

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
        if let Some(q) = query {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                map.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(map));
        }
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
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
        Ok(Self(map))
    }

    /// The value, treating JSON `null` as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// All parameters (to record what a client sent).
    pub(crate) fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
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
