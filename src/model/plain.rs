//! Deserialisation errors in words an engineer can act on.
//!
//! The `config` crate reports a misspelt choice as `enum WordOrder does not have variant
//! constructor CBAD` and a number out of range by its Rust type (`expected an unsigned 16
//! bit integer`). [`plain`] turns each into what the file's reader needs: the valid
//! values, the range, a word for the type. The valid values come from the types
//! themselves (serde lists its variants), so they cannot drift from what is accepted.

use std::collections::BTreeMap;

use serde::de::{
    self, value::StringDeserializer, Deserialize, DeserializeOwned, Deserializer, Visitor,
};

use super::{
    alarm::{AlarmClass, AlarmKind},
    file::{ChannelKind, DataType, HazardSourceKind, Parity, PointKind, RegisterTable, WordOrder},
    mqtt::Protocol,
    risk::Colour,
    uplink::TelemetryForm,
};

/// A message from `config` / serde rewritten for a person; unchanged if not recognised.
pub fn plain(message: &str) -> String {
    if let Some(m) = unknown_choice(message) {
        return m;
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!(
            "unknown value {}",
            rest.replacen(", expected", "; expected", 1)
        );
    }
    if let Some(m) = out_of_range(message) {
        return m;
    }
    if let Some(m) = wrong_type(message) {
        return m;
    }
    message.to_string()
}

/// The field path and message of a deserialisation error, a missing field named at its
/// own path (`gateway.park_id: required`), not at its section's.
pub fn located(path: &str, message: &str) -> (String, String) {
    let missing = message
        .strip_prefix("missing configuration field \"")
        .map(|rest| dotted(rest.trim_end_matches('"')))
        .or_else(|| {
            let field = message
                .strip_prefix("missing field `")?
                .trim_end_matches('`');
            Some(match path {
                "" => field.to_string(),
                p => format!("{p}.{field}"),
            })
        });
    match missing {
        Some(at) => (at, "required, and missing".to_string()),
        None => (path.to_string(), plain(message)),
    }
}

/// `config` writes `channels[0]devices[0]unit_id`: the dots go back after each index.
fn dotted(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    let mut after_index = false;
    for c in path.chars() {
        if after_index && c != '[' && c != '.' {
            out.push('.');
        }
        after_index = c == ']';
        out.push(c);
    }
    out
}

/// `enum WordOrder does not have variant constructor CBAD` → the valid values.
fn unknown_choice(message: &str) -> Option<String> {
    let rest = message.strip_prefix("enum ")?;
    let (name, got) = rest.split_once(" does not have variant constructor ")?;
    let valid = choices(name)?;
    Some(format!(
        "unknown value `{got}`; expected one of {}",
        valid
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// `invalid type: 64-bit unsigned integer `70000`, expected an unsigned 16 bit integer`
/// → `70000 is out of range: must be 0–65535`.
fn out_of_range(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (got, expected) = rest.split_once(", expected ")?;
    if !got.contains("integer `") {
        return None;
    }
    let number = got.split('`').nth(1)?;
    let range = match expected {
        "an unsigned 8 bit integer" => "0–255",
        "an unsigned 16 bit integer" => "0–65535",
        "an unsigned 32 bit integer" => "0–4294967295",
        "an unsigned 64 bit or less integer" if number.starts_with('-') => {
            return Some(format!("{number} is negative: must be a whole number ≥ 0"))
        }
        "a signed 8 bit integer" => "-128–127",
        "a signed 16 bit integer" => "-32768–32767",
        "a signed 32 bit integer" => "-2147483648–2147483647",
        _ => return None,
    };
    Some(format!("{number} is out of range: must be {range}"))
}

/// `invalid type: string "x", expected a floating point` → `expected a number, got the
/// text "x"`.
fn wrong_type(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (got, expected) = rest.split_once(", expected ")?;
    let want = match expected {
        "a floating point" | "f64" | "f32" => "a number",
        "an integer" => "a whole number",
        e if e.contains("bit integer") || e.starts_with("u") || e.starts_with("i") => {
            "a whole number"
        }
        "a boolean" => "true or false",
        _ => return None,
    };
    let got = match got.strip_prefix("string ") {
        Some(text) => format!("the text {text} (remove the quotes if it is a number)"),
        None => got.to_string(),
    };
    Some(format!("expected {want}, got {got}"))
}

/// `deserialize_with` for a map keyed by a choice (`[alarm_defaults.<kind>]`,
/// `classes = { h = … }`): the keys are read as text first, so an error inside an entry
/// names its key (`alarm_defaults.combustible_gas.h`, where the path tracker alone
/// shows `alarm_defaults.?.h`), and a misspelt key lists the valid ones.
pub fn choice_keys<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: DeserializeOwned + Ord,
    V: Deserialize<'de>,
{
    BTreeMap::<String, V>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| K::deserialize(StringDeserializer::<D::Error>::new(k)).map(|k| (k, v)))
        .collect()
}

/// The valid spellings of a choice in the configuration files, by its type's name; an
/// alias that differs only in case (`abcd` beside `ABCD`) is not listed again.
pub fn choices(type_name: &str) -> Option<Vec<&'static str>> {
    let variants = match type_name {
        "WordOrder" => variants::<WordOrder>(),
        "DataType" => variants::<DataType>(),
        "RegisterTable" => variants::<RegisterTable>(),
        "PointKind" => variants::<PointKind>(),
        "HazardSourceKind" => variants::<HazardSourceKind>(),
        "ChannelKind" => variants::<ChannelKind>(),
        "Parity" => variants::<Parity>(),
        "AlarmKind" => variants::<AlarmKind>(),
        "AlarmClass" => variants::<AlarmClass>(),
        "Colour" => variants::<Colour>(),
        "Protocol" => variants::<Protocol>(),
        "TelemetryForm" => variants::<TelemetryForm>(),
        _ => return None,
    };
    let mut listed: Vec<&'static str> = Vec::new();
    for v in variants {
        if !listed.iter().any(|l| l.eq_ignore_ascii_case(v)) {
            listed.push(v);
        }
    }
    Some(listed)
}

/// The serialised names of an enum's variants, as its derived `Deserialize` declares them.
pub fn variants<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(VariantNames) {
        Err(Found(Some(names))) => names,
        _ => &[],
    }
}

/// A deserializer that asks only for the variant list and stops there.
struct VariantNames;

#[derive(Debug)]
struct Found(Option<&'static [&'static str]>);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("variant names")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Found(None)
    }
}

impl<'de> Deserializer<'de> for VariantNames {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(Some(variants)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_in_plain_words() {
        for (from, to) in [
            (
                "enum WordOrder does not have variant constructor CBAD",
                "unknown value `CBAD`; expected one of `ABCD`, `BADC`, `CDAB`, `DCBA`",
            ),
            (
                "enum Parity does not have variant constructor odd1",
                "unknown value `odd1`; expected one of `none`, `even`, `odd`",
            ),
            (
                "invalid type: 64-bit unsigned integer `70000`, expected an unsigned 16 bit integer",
                "70000 is out of range: must be 0–65535",
            ),
            (
                "invalid type: 64-bit unsigned integer `300`, expected an unsigned 8 bit integer",
                "300 is out of range: must be 0–255",
            ),
            (
                "invalid type: 64-bit integer `-1`, expected an unsigned 64 bit or less integer",
                "-1 is negative: must be a whole number ≥ 0",
            ),
            (
                "invalid type: string \"x\", expected a floating point",
                "expected a number, got the text \"x\" (remove the quotes if it is a number)",
            ),
            (
                "invalid type: string \"abc\", expected an integer",
                "expected a whole number, got the text \"abc\" (remove the quotes if it is a number)",
            ),
            ("unknown field `adress`", "unknown field `adress`"),
            (
                "unknown variant `combustible`, expected one of `combustible_gas`, `toxic_gas`",
                "unknown value `combustible`; expected one of `combustible_gas`, `toxic_gas`",
            ),
        ] {
            assert_eq!(plain(from), to, "from {from}");
        }
    }

    #[test]
    fn a_missing_field_is_named_at_its_own_path() {
        assert_eq!(
            located("gateway", "missing configuration field \"gateway.park_id\""),
            ("gateway.park_id".into(), "required, and missing".into())
        );
        assert_eq!(
            located("channels[0]", "missing field `id`"),
            ("channels[0].id".into(), "required, and missing".into())
        );
        assert_eq!(
            located(
                "",
                "missing configuration field \"channels[0]devices[1]unit_id\""
            ),
            (
                "channels[0].devices[1].unit_id".into(),
                "required, and missing".into()
            )
        );
    }

    #[test]
    fn every_choice_lists_its_values() {
        for name in [
            "WordOrder",
            "DataType",
            "RegisterTable",
            "PointKind",
            "HazardSourceKind",
            "ChannelKind",
            "Parity",
            "AlarmKind",
            "AlarmClass",
            "Colour",
            "Protocol",
            "TelemetryForm",
        ] {
            let v = choices(name).unwrap();
            assert!(v.len() >= 2, "{name}: {v:?}");
        }
        assert!(variants::<DataType>().contains(&"f32"));
        assert!(variants::<PointKind>().contains(&"combustible_gas"));
    }
}
