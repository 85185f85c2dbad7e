//! Strict JSON reading: what serde's derives accept beyond the contract's schemas, refused at
//! the field that carries it.
//!
//! A derived struct also reads a JSON array (its fields in order), a derived tagged enum also
//! reads an integer tag (the variant's index), and an `Option` reads `null` as absent. The
//! contract allows none of these: an object is an object, a tag is a string, and an optional
//! field with a type may be absent but never `null`. Each helper here is used with
//! `#[serde(deserialize_with = "...")]` on the field whose schema it enforces; unknown fields
//! stay the business of `deny_unknown_fields` on the types themselves.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An optional field that, when present, must hold a value: `null` is refused.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A field the contract types as an object: any other JSON type is refused before `T` reads it.
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    read(deserializer, Shape::Object)
}

/// [`object`] for an optional field (absent is fine, `null` is not).
pub(crate) fn present_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    read(deserializer, Shape::Object).map(Some)
}

/// A list of objects.
pub(crate) fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    read_each(deserializer, Shape::Object)
}

/// A union tagged on `type`: an object whose `type` is a string.
pub(crate) fn tagged<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    read(deserializer, Shape::Tagged)
}

/// [`tagged`] for an optional field.
pub(crate) fn present_tagged<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    read(deserializer, Shape::Tagged).map(Some)
}

/// A list of tagged unions.
pub(crate) fn tagged_each<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    read_each(deserializer, Shape::Tagged)
}

#[derive(Clone, Copy)]
enum Shape {
    Object,
    Tagged,
}

fn check(value: &Value, shape: Shape) -> Result<(), String> {
    let Value::Object(members) = value else {
        return Err(format!("invalid type: {}, expected a JSON object", json_type(value)));
    };
    if let (Shape::Tagged, Some(tag)) = (shape, members.get("type"))
        && !tag.is_string()
    {
        return Err(format!("invalid type: {} as `type`, expected a string", json_type(tag)));
    }
    Ok(())
}

fn read<'de, D, T>(deserializer: D, shape: Shape) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    check(&value, shape).map_err(D::Error::custom)?;
    T::deserialize(value).map_err(D::Error::custom)
}

fn read_each<'de, D, T>(deserializer: D, shape: Shape) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let values = Vec::<Value>::deserialize(deserializer)?;
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        check(&value, shape).map_err(D::Error::custom)?;
        out.push(T::deserialize(value).map_err(D::Error::custom)?);
    }
    Ok(out)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
