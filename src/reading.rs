//! What acquisition produces and every later stage consumes.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use crate::model::PointIndex;

/// Milliseconds since the Unix epoch, UTC. On the wire (API, MQTT) an RFC 3339 string
/// with milliseconds, so every consumer reads one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// Read back only in the form it is written (`2026-11-23T07:42:59.123Z`): the contract's
/// schemas allow no other, and a decoder that took more would accept what they refuse.
impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 UTC time with milliseconds")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse_wire(s).ok_or_else(|| {
                    E::custom(format!(
                        "`{s}` is not an RFC 3339 UTC time with milliseconds"
                    ))
                })
            }
        }
        d.deserialize_str(Visit)
    }
}

impl Timestamp {
    /// Parses exactly what [`Timestamp::to_rfc3339`] writes. The readings of one scan
    /// share their time, so the last text parsed is remembered (a batch of 500 readings
    /// repeats one).
    pub fn parse_wire(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let shape = b.len() == 24
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'.',
                23 => *c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shape {
            return None;
        }
        thread_local! {
            static LAST: std::cell::Cell<([u8; 24], i64)> = const { std::cell::Cell::new(([0; 24], 0)) };
        }
        let (text, ms) = LAST.get();
        if text == b[..] {
            return Some(Self(ms));
        }
        let t = Self::parse_rfc3339(s)?;
        let mut key = [0u8; 24];
        key.copy_from_slice(b);
        LAST.set((key, t.0));
        Some(t)
    }

    /// Parses what [`Timestamp::to_rfc3339`] writes (and other RFC 3339 UTC forms).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t = humantime::parse_rfc3339_weak(s).ok()?;
        let ms = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).ok()?,
            Err(e) => -i64::try_from(e.duration().as_millis()).ok()?,
        };
        Some(Self(ms))
    }

    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self(ms)
    }

    /// RFC 3339 with milliseconds, e.g. `2026-11-23T07:42:59.123Z`.
    pub fn to_rfc3339(self) -> String {
        let t = UNIX_EPOCH + Duration::from_millis(self.0.max(0) as u64);
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// How far a reading can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    Good,
    /// Timeout, disconnect, bad CRC or garbled frame: no value was obtained.
    CommFailure,
    /// The device answered with a Modbus exception (code inside).
    DeviceException(u8),
    /// A value arrived but is not a measurement: outside its valid range, a 4–20 mA
    /// loop out of band, a vendor fault code, or the detector's own fault bit.
    SensorFault,
    /// No fresh value for longer than the site's stale limit.
    Stale,
}

impl Quality {
    pub fn is_good(self) -> bool {
        self == Self::Good
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::CommFailure => "comm_failure",
            Self::DeviceException(_) => "device_exception",
            Self::SensorFault => "sensor_fault",
            Self::Stale => "stale",
        }
    }

    pub fn exception_code(self) -> Option<u8> {
        match self {
            Self::DeviceException(c) => Some(c),
            _ => None,
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeviceException(c) => write!(f, "device_exception(0x{c:02X})"),
            q => f.write_str(q.as_str()),
        }
    }
}

impl Serialize for Quality {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a value stands against its point's measuring range (OPC UA calls these the
/// limit bits). A detector driven past full scale by a large leak still reports "at
/// least this much": the value is kept and this flag says it is a bound, not a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RangeFlag {
    #[default]
    Within,
    /// Above the range: the true value is at least the value reported.
    Over,
    /// Below the range: the true value is at most the value reported.
    Under,
}

impl RangeFlag {
    pub fn is_over(self) -> bool {
        self == Self::Over
    }

    pub fn is_under(self) -> bool {
        self == Self::Under
    }
}

/// A value in engineering units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Analog(f64),
    Discrete(bool),
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Analog(v) => v,
            Self::Discrete(b) => f64::from(u8::from(b)),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Analog(v) => write!(f, "{v:.2}"),
            Self::Discrete(b) => write!(f, "{}", if *b { "ON" } else { "off" }),
        }
    }
}

/// The raw words or bit a value was decoded from, kept for commissioning and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Raw {
    #[default]
    None,
    Bit(bool),
    Words {
        words: [u16; 4],
        len: u8,
    },
}

impl Raw {
    pub fn words(ws: &[u16]) -> Self {
        let mut words = [0u16; 4];
        let len = ws.len().min(4);
        words[..len].copy_from_slice(&ws[..len]);
        Self::Words {
            words,
            len: len as u8,
        }
    }
}

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::None => s.serialize_none(),
            Self::Bit(b) => s.serialize_bool(*b),
            Self::Words { words, len } => words[..*len as usize].serialize(s),
        }
    }
}

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("-"),
            Self::Bit(b) => write!(f, "{}", u8::from(*b)),
            Self::Words { words, len } => {
                for (i, w) in words[..*len as usize].iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{w:04X}")?;
                }
                Ok(())
            }
        }
    }
}

/// One point's value at one instant. Small and `Copy`: ids are resolved through the
/// site model by `point` only where a person or a wire format needs them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub point: PointIndex,
    /// `None` when no value was obtained (comm failure, exception) or the value is
    /// not a number (NaN / infinite float).
    pub value: Option<Value>,
    pub quality: Quality,
    /// Acquisition time (UTC).
    pub ts: Timestamp,
    pub raw: Raw,
    /// Above or below the measuring range (the value is then a bound).
    pub range: RangeFlag,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0, 1_795_419_779_123, 951_782_400_000] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        }
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_419_779_123).to_rfc3339(),
            "2026-11-23T07:42:59.123Z"
        );
        assert_eq!(
            Timestamp(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
