//! InfluxDB line protocol, written straight into the batch buffer: the store schema's
//! one writer, for ingest and for the gateway's `hazgate export`.
//!
//! Escaping follows the line-protocol reference: in a measurement `,` and space; in tag
//! keys, tag values and field keys `,` `=` and space; in string field values `"` and
//! `\`. A line break cannot be escaped in any of them and would split the line in two,
//! so it is written as an escaped space. Tags and fields go out sorted by key, as the
//! influxdb2 crate's `DataPoint` writes them (a test holds the two to each other), so
//! a series has one spelling whichever path wrote it. Keys are the store schema's own
//! names (`docs/storage.md`), written as they are.

use std::io::Write as _;

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'a str),
}

impl From<i64> for Field<'_> {
    fn from(v: i64) -> Self {
        Field::Int(v)
    }
}
impl From<f64> for Field<'_> {
    fn from(v: f64) -> Self {
        Field::Float(v)
    }
}
impl From<bool> for Field<'_> {
    fn from(v: bool) -> Self {
        Field::Bool(v)
    }
}
impl<'a> From<&'a str> for Field<'a> {
    fn from(v: &'a str) -> Self {
        Field::Str(v)
    }
}

/// One point, gathered and then written.
#[derive(Debug, Clone)]
pub struct Point<'a> {
    measurement: &'static str,
    tags: Vec<(&'static str, &'a str)>,
    fields: Vec<(&'static str, Field<'a>)>,
}

impl<'a> Point<'a> {
    pub fn new(measurement: &'static str) -> Self {
        Self {
            measurement,
            tags: Vec::with_capacity(8),
            fields: Vec::with_capacity(8),
        }
    }

    pub fn tag(mut self, key: &'static str, value: &'a str) -> Self {
        self.tags.push((key, value));
        self
    }

    pub fn field(mut self, key: &'static str, value: impl Into<Field<'a>>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    /// Appends the line (timestamp in the batch's precision). A point always has a
    /// field: every measurement of the store schema writes at least one.
    pub fn write(mut self, out: &mut Vec<u8>, ts: i64) {
        self.write_tags(out);
        self.fields.sort_by_key(|(k, _)| *k);
        for (i, (k, v)) in self.fields.iter().enumerate() {
            out.push(if i == 0 { b' ' } else { b',' });
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            field_value(out, *v);
        }
        let _ = writeln!(out, " {ts}");
    }
}

impl Point<'_> {
    /// The measurement and its tags: the part of a line that names the series.
    pub fn write_tags(&mut self, out: &mut Vec<u8>) {
        self.tags.sort_by_key(|(k, _)| *k);
        escape(out, self.measurement, b", ");
        for (k, v) in &self.tags {
            out.push(b',');
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            tag_value(out, v);
        }
    }
}

/// A tag value, escaped.
pub fn tag_value(out: &mut Vec<u8>, v: &str) {
    escape(out, v, b",= ");
}

fn field_value(out: &mut Vec<u8>, v: Field<'_>) {
    // Writing into a Vec cannot fail.
    let _ = match v {
        Field::Int(x) => write!(out, "{x}i"),
        Field::Float(x) => write!(out, "{x}"),
        Field::Bool(b) => {
            out.push(if b { b't' } else { b'f' });
            Ok(())
        }
        Field::Str(s) => {
            out.push(b'"');
            escape(out, s, b"\"\\");
            out.push(b'"');
            Ok(())
        }
    };
}

/// `s` with a backslash before each of `special`, and line breaks as escaped spaces.
fn escape(out: &mut Vec<u8>, s: &str, special: &[u8]) {
    for &b in s.as_bytes() {
        match b {
            b'\n' | b'\r' => out.extend_from_slice(b"\\ "),
            _ if special.contains(&b) => out.extend_from_slice(&[b'\\', b]),
            _ => out.push(b),
        }
    }
}

#[cfg(all(test, feature = "centre"))]
mod tests {
    use influxdb2::models::{DataPoint, WriteDataPoint};
    use proptest::prelude::*;

    use super::*;

    fn ours(tag: &str, text: &str, x: f64, n: i64, b: bool) -> String {
        let mut out = Vec::new();
        Point::new("m")
            .tag("zone", tag)
            .tag("a", "x y")
            .field("value", x)
            .field("count", n)
            .field("text", text)
            .field("flag", b)
            .write(&mut out, 1_795_419_778_001);
        String::from_utf8(out).unwrap()
    }

    fn theirs(tag: &str, text: &str, x: f64, n: i64, b: bool) -> String {
        let p = DataPoint::builder("m")
            .tag("zone", tag)
            .tag("a", "x y")
            .field("value", x)
            .field("count", n)
            .field("text", text)
            .field("flag", b)
            .timestamp(1_795_419_778_001)
            .build()
            .unwrap();
        let mut out = Vec::new();
        p.write_data_point_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    proptest! {
        /// Where the crate is right (everything but `\` in strings and line breaks),
        /// the two write the same bytes.
        #[test]
        fn lines_are_what_the_influxdb2_crate_writes(
            tag in "[ -\\[\\]-~中文]{1,12}",
            text in "[ -\\[\\]-~中文]{0,12}",
            x in proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
            n in any::<i64>(),
            b in any::<bool>(),
        ) {
            prop_assert_eq!(ours(&tag, &text, x, n, b), theirs(&tag, &text, x, n, b));
        }
    }

    #[test]
    fn what_the_crate_would_break_stays_on_one_line() {
        let line = ours("a\nb", "ends in \\", 1.0, 1, true);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.contains(r#"text="ends in \\""#), "{line}");
        assert!(line.contains(r"zone=a\ b"), "{line}");
    }
}
