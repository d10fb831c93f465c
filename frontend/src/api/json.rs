//! Reading the API's JSON answers into the SPA's types, by hand.
//!
//! An answer is parsed once into a `serde_json::Value` (one parser for all
//! of them) and each type picks its fields with the small helpers here.
//! `#[derive(Deserialize)]` would generate a visitor per type and
//! instantiate the parser for every list and option of it: tens of KB of
//! wasm for the SPA's ~30 answer shapes. Absent optional fields and
//! `null` read as `None`; a required field that is missing or of the
//! wrong type is an error naming it.

use serde_json::Value;

/// A type decoded from an API answer.
pub trait FromJson: Sized {
    /// Decodes `value`; the error says which field was wrong.
    fn from_json(value: &Value) -> Result<Self, String>;
}

impl FromJson for Value {
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
}

impl FromJson for () {
    fn from_json(_: &Value) -> Result<Self, String> {
        Ok(())
    }
}

impl FromJson for String {
    fn from_json(value: &Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "expected a string".to_owned())
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value) -> Result<Self, String> {
        value
            .as_array()
            .ok_or_else(|| "expected a list".to_owned())?
            .iter()
            .map(T::from_json)
            .collect()
    }
}

/// The fields of one JSON object.
#[derive(Clone, Copy)]
pub struct Fields<'a>(&'a Value);

impl<'a> Fields<'a> {
    /// `value`'s fields; an error unless it is an object.
    pub fn of(value: &'a Value) -> Result<Self, String> {
        if value.is_object() {
            Ok(Fields(value))
        } else {
            Err("expected an object".to_owned())
        }
    }

    /// The field, unless absent or `null`.
    fn get(self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A required string.
    pub fn string(self, key: &str) -> Result<String, String> {
        self.opt_string(key).ok_or_else(|| missing(key, "a string"))
    }

    /// An optional string.
    pub fn opt_string(self, key: &str) -> Option<String> {
        self.get(key).and_then(Value::as_str).map(str::to_owned)
    }

    /// A required integer.
    pub fn int(self, key: &str) -> Result<i64, String> {
        self.opt_int(key).ok_or_else(|| missing(key, "an integer"))
    }

    /// An optional integer.
    pub fn opt_int(self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// A required integer that fits `T` (a status code, a count).
    pub fn int_in<T: TryFrom<i64>>(self, key: &str) -> Result<T, String> {
        T::try_from(self.int(key)?).map_err(|_| format!("`{key}` is out of range"))
    }

    /// An optional integer that fits an `i32` (workflow versions).
    pub fn opt_i32(self, key: &str) -> Option<i32> {
        self.opt_int(key).and_then(|n| i32::try_from(n).ok())
    }

    /// A required number.
    pub fn float(self, key: &str) -> Result<f64, String> {
        self.opt_float(key).ok_or_else(|| missing(key, "a number"))
    }

    /// An optional number.
    pub fn opt_float(self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// A required boolean.
    pub fn boolean(self, key: &str) -> Result<bool, String> {
        self.get(key)
            .and_then(Value::as_bool)
            .ok_or_else(|| missing(key, "true or false"))
    }

    /// Any JSON (`null` when absent).
    pub fn value(self, key: &str) -> Value {
        self.0.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Any JSON but `null`.
    pub fn opt_value(self, key: &str) -> Option<Value> {
        self.get(key).cloned()
    }

    /// A required field of a decoded type (a list, an object).
    pub fn decode<T: FromJson>(self, key: &str) -> Result<T, String> {
        let value = self.get(key).ok_or_else(|| missing(key, "a value"))?;
        T::from_json(value).map_err(|e| format!("`{key}`: {e}"))
    }

    /// An optional field of a decoded type.
    pub fn opt_decode<T: FromJson>(self, key: &str) -> Result<Option<T>, String> {
        self.get(key)
            .map(|value| T::from_json(value).map_err(|e| format!("`{key}`: {e}")))
            .transpose()
    }
}

fn missing(key: &str, what: &str) -> String {
    format!("`{key}` is missing or not {what}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_required_and_optional_fields() {
        let v = json!({"s": "x", "n": 7, "f": 1.5, "b": true, "z": null, "l": ["a", "b"]});
        let f = Fields::of(&v).unwrap();
        assert_eq!(f.string("s").unwrap(), "x");
        assert_eq!(f.opt_string("z"), None);
        assert_eq!(f.opt_string("absent"), None);
        assert_eq!(f.int("n").unwrap(), 7);
        assert_eq!(f.opt_i32("n"), Some(7));
        assert_eq!(f.int_in::<u16>("n").unwrap(), 7);
        assert_eq!(f.float("f").unwrap(), 1.5);
        assert!(f.boolean("b").unwrap());
        assert_eq!(f.value("absent"), Value::Null);
        assert_eq!(f.opt_value("z"), None);
        assert_eq!(f.decode::<Vec<String>>("l").unwrap(), vec!["a", "b"]);
        assert_eq!(f.opt_decode::<Vec<String>>("z").unwrap(), None);
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let v = json!({"s": 1, "l": [1]});
        let f = Fields::of(&v).unwrap();
        assert_eq!(f.string("s").unwrap_err(), "`s` is missing or not a string");
        assert_eq!(
            f.int("nope").unwrap_err(),
            "`nope` is missing or not an integer"
        );
        assert_eq!(
            f.decode::<Vec<String>>("l").unwrap_err(),
            "`l`: expected a string"
        );
        assert_eq!(
            Fields::of(&json!({"n": -1}))
                .unwrap()
                .int_in::<u32>("n")
                .unwrap_err(),
            "`n` is out of range"
        );
        assert!(Fields::of(&json!([1])).is_err());
    }
}
