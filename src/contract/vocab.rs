//! The contract's vocabulary shared by every payload: text and identifiers, the
//! quality of a reading and a value — what [`super::wire`]'s messages and
//! [`super::samples`]' compact telemetry are both made of.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::reading;

/// Text on the wire, borrowed where it can be.
pub type Text<'a> = Cow<'a, str>;

/// An identifier on the wire (park, enterprise, gateway, hazard source, point, device):
/// non-empty, without `/ + #` or whitespace — it is also a topic level and a store tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Id<'a>(pub Text<'a>);

impl<'a> From<&'a str> for Id<'a> {
    fn from(s: &'a str) -> Self {
        Id(Cow::Borrowed(s))
    }
}

impl std::ops::Deref for Id<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` may be an [`Id`].
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| matches!(c, '/' | '+' | '#') || c.is_whitespace())
}

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an id: non-empty, without / + # or whitespace")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Id<'de>, E> {
                is_id(s)
                    .then_some(Id(Cow::Borrowed(s)))
                    .ok_or_else(|| E::custom(format!("`{s}` is not an id")))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Id<'de>, E> {
                is_id(s)
                    .then(|| Id(Cow::Owned(s.to_string())))
                    .ok_or_else(|| E::custom(format!("`{s}` is not an id")))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// For a field the contract allows to be absent but not null: serde would take a null
/// `Option` as `None`; with this (and `default`), null is an error, as in the schemas.
pub(super) fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// For a field the contract requires but allows to be null: serde takes a missing
/// `Option` as `None`; with this, a missing field is an error, as in the schemas.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// How far a reading can be trusted; `exception` beside it carries a Modbus code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Good,
    CommFailure,
    DeviceException,
    SensorFault,
    Stale,
}

impl Quality {
    /// As stored (string fields are not kept by every store): good 0 … stale 4.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The quality a stored code stands for.
    pub fn from_code(code: i64) -> Option<Self> {
        [
            Self::Good,
            Self::CommFailure,
            Self::DeviceException,
            Self::SensorFault,
            Self::Stale,
        ]
        .into_iter()
        .find(|q| q.code() == code)
    }

    /// Back to a reading's quality; `exception` is the Modbus code of a device exception.
    pub fn reading(self, exception: u8) -> reading::Quality {
        match self {
            Self::Good => reading::Quality::Good,
            Self::CommFailure => reading::Quality::CommFailure,
            Self::DeviceException => reading::Quality::DeviceException(exception),
            Self::SensorFault => reading::Quality::SensorFault,
            Self::Stale => reading::Quality::Stale,
        }
    }
}

impl From<reading::Quality> for Quality {
    fn from(q: reading::Quality) -> Self {
        match q {
            reading::Quality::Good => Self::Good,
            reading::Quality::CommFailure => Self::CommFailure,
            reading::Quality::DeviceException(_) => Self::DeviceException,
            reading::Quality::SensorFault => Self::SensorFault,
            reading::Quality::Stale => Self::Stale,
        }
    }
}

/// A value in engineering units: a number, or a discrete state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    State(bool),
}

/// By hand, not `untagged`: serde's untagged enums buffer each value and try every
/// variant in turn, and a telemetry batch holds hundreds of values.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a boolean")
            }
            fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
                Ok(Value::Number(x))
            }
            fn visit_i64<E>(self, x: i64) -> Result<Value, E> {
                Ok(Value::Number(x as f64))
            }
            fn visit_u64<E>(self, x: u64) -> Result<Value, E> {
                Ok(Value::Number(x as f64))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
                Ok(Value::State(b))
            }
        }
        d.deserialize_any(Visit)
    }
}

impl Value {
    /// Discrete states as 1 / 0.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Number(x) => x,
            Self::State(b) => f64::from(u8::from(b)),
        }
    }
}

impl From<reading::Value> for Value {
    fn from(v: reading::Value) -> Self {
        match v {
            reading::Value::Analog(x) => Self::Number(x),
            reading::Value::Discrete(b) => Self::State(b),
        }
    }
}
