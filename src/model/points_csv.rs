//! Point tables from spreadsheets.
//!
//! Instrument engineers keep register maps of thousands of rows in Excel. A hazard
//! source (or the site) may take its points from a CSV file (`points_csv`), one row per
//! point, with the point fields of the TOML as columns (documented in
//! docs/commissioning.md). Rows are read one at a time into a typed row — no document
//! tree — so a 50,000-point table costs its text and its points, nothing more. A Chinese
//! Excel saves CSV as GBK: `points_encoding = "gbk"` (or `gb18030`) reads it; UTF-8 is
//! the default, with or without the byte-order mark Excel writes.
//!
//! Every problem names the file, the line and the column.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use super::{
    alarm::{AlarmClass, AlarmKind, AlarmSettingsFile},
    file::{
        CsvEncoding, DataType, LoopCurrentFile, PointFile, PointKind, RegisterTable, WordOrder,
    },
    problems::Problems,
};

/// One row: the point's fields, flat. Ranges are min / max column pairs; alarm settings
/// are their own columns (`h`, `hh`, …); lists are `;`-separated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PointRow {
    /// For a site-wide table: the hazard source the point watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hazard_source: Option<String>,
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub kind: PointKind,
    #[serde(default)]
    pub gas: Option<String>,
    pub device: String,
    pub table: RegisterTable,
    pub address: u16,
    #[serde(default)]
    pub data_type: Option<DataType>,
    #[serde(default)]
    pub word_order: Option<WordOrder>,
    #[serde(default)]
    pub bit: Option<u8>,
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub offset: Option<f64>,
    #[serde(default)]
    pub raw_min: Option<f64>,
    #[serde(default)]
    pub raw_max: Option<f64>,
    #[serde(default)]
    pub eng_min: Option<f64>,
    #[serde(default)]
    pub eng_max: Option<f64>,
    #[serde(default)]
    pub decimals: Option<u8>,
    /// `true` for 4–20 mA loop supervision with the default fault currents.
    #[serde(default, deserialize_with = "flag")]
    pub loop_current: Option<bool>,
    #[serde(default)]
    pub loop_fault_below_ma: Option<f64>,
    #[serde(default)]
    pub loop_fault_above_ma: Option<f64>,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub valid_min: Option<f64>,
    #[serde(default)]
    pub valid_max: Option<f64>,
    /// `65535;32768`
    #[serde(default)]
    pub fault_codes: String,
    #[serde(default)]
    pub fault_point: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub normal: Option<bool>,
    #[serde(default)]
    pub hh: Option<f64>,
    #[serde(default)]
    pub h: Option<f64>,
    #[serde(default)]
    pub l: Option<f64>,
    #[serde(default)]
    pub ll: Option<f64>,
    #[serde(default)]
    pub deadband: Option<f64>,
    #[serde(default)]
    pub on_delay_s: Option<f64>,
    #[serde(default)]
    pub off_delay_s: Option<f64>,
    #[serde(default)]
    pub rate_per_min: Option<f64>,
    #[serde(default, deserialize_with = "flag")]
    pub alarm_on: Option<bool>,
    #[serde(default)]
    pub fault_delay_s: Option<f64>,
    /// `hh=critical;h=high`
    #[serde(default)]
    pub classes: String,
}

/// A yes/no cell as spreadsheets write it: `true` / `TRUE` / `1` / `yes`, their
/// opposites, or empty.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let cell = String::deserialize(d)?;
    match cell.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "1" | "yes" | "y" => Ok(Some(true)),
        "false" | "0" | "no" | "n" => Ok(Some(false)),
        other => Err(serde::de::Error::custom(format!(
            "`{other}` is not yes/no (write true or false)"
        ))),
    }
}

/// The points of one CSV table, each with the line it came from.
pub struct Table {
    pub rows: Vec<(u64, Option<String>, PointFile)>,
}

/// Reads a table; every problem goes to `errors` at `{label}:{line}: column`.
pub fn read(path: &Path, label: &str, encoding: CsvEncoding, errors: &mut Problems) -> Table {
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes, label, encoding, errors),
        Err(e) => {
            errors.push(
                label,
                format!("cannot read the point table {}: {e}", path.display()),
            );
            Table { rows: Vec::new() }
        }
    }
}

/// Parses a table's bytes (what [`read`] does once the file is read).
pub fn parse(bytes: &[u8], label: &str, encoding: CsvEncoding, errors: &mut Problems) -> Table {
    let name = label.to_string();
    let mut table = Table { rows: Vec::new() };
    let text = match decode(bytes, encoding) {
        Ok(t) => t,
        Err(m) => {
            errors.push(name, m);
            return table;
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(name, format!("cannot read the header row: {e}"));
            return table;
        }
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(format!("{name}:{line}"), e.to_string());
                break;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let at = format!("{name}:{line}");
        if record.iter().all(str::is_empty) {
            continue;
        }
        match record.deserialize::<PointRow>(Some(&headers)) {
            Ok(row) => {
                let source = row.hazard_source.clone();
                if let Some(p) = row.into_point(&at, errors) {
                    table.rows.push((line, source, p));
                }
            }
            Err(e) => errors.push(at, row_error(&e, &headers, &record)),
        }
    }
    table
}

/// A deserialisation error of one row, by column name.
fn row_error(e: &csv::Error, headers: &csv::StringRecord, record: &csv::StringRecord) -> String {
    let csv::ErrorKind::Deserialize { err, .. } = e.kind() else {
        return e.to_string();
    };
    let message = err.kind().to_string();
    // An unknown choice carries no column index: find the cell it quotes.
    let index = err.field().map(|i| i as usize).or_else(|| {
        let quoted = message.split('`').nth(1)?;
        record.iter().position(|cell| cell == quoted)
    });
    let column = index.and_then(|i| headers.get(i));
    let cell = index.and_then(|i| record.get(i)).unwrap_or("");
    let message = match (err.kind(), column) {
        (csv::DeserializeErrorKind::ParseInt(_), Some(c)) => match whole_range(c) {
            Some(range) => format!("`{cell}` is not a whole number {range}"),
            None => format!("`{cell}` is not a whole number"),
        },
        (csv::DeserializeErrorKind::ParseFloat(_), _) => format!("`{cell}` is not a number"),
        _ => super::plain::plain(&message),
    };
    match column {
        Some(c) => format!("column `{c}`: {message}"),
        None => message,
    }
}

/// The range of a whole-number column.
fn whole_range(column: &str) -> Option<&'static str> {
    match column {
        "address" => Some("0–65535"),
        "bit" => Some("0–15"),
        "decimals" => Some("0–9"),
        _ => None,
    }
}

/// UTF-8 (a leading byte-order mark dropped) or GB18030 / GBK.
fn decode(bytes: &[u8], encoding: CsvEncoding) -> Result<String, String> {
    match encoding {
        CsvEncoding::Utf8 => {
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            std::str::from_utf8(bytes).map(str::to_string).map_err(|e| {
                let at = e.valid_up_to();
                let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                format!(
                    "not UTF-8 at byte {at} (line {line}); a table saved by a Chinese-locale Excel is GBK: set points_encoding = \"gbk\""
                )
            })
        }
        CsvEncoding::Gbk | CsvEncoding::Gb18030 => {
            let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            if had_errors {
                let line = text
                    .find('\u{FFFD}')
                    .map_or(0, |i| text[..i].matches('\n').count() + 1);
                return Err(format!(
                    "not GBK / GB18030 (line {line}); if the file is UTF-8, leave points_encoding out"
                ));
            }
            Ok(text.into_owned())
        }
    }
}

fn pair(
    min: Option<f64>,
    max: Option<f64>,
    columns: &str,
    at: &str,
    errors: &mut Problems,
) -> Option<[f64; 2]> {
    match (min, max) {
        (Some(a), Some(b)) => Some([a, b]),
        (None, None) => None,
        _ => {
            errors.push(at, format!("columns {columns}: give both or neither"));
            None
        }
    }
}

impl PointRow {
    fn into_point(self, at: &str, errors: &mut Problems) -> Option<PointFile> {
        let before = errors.len();
        let raw_range = pair(
            self.raw_min,
            self.raw_max,
            "`raw_min` / `raw_max`",
            at,
            errors,
        );
        let eng_range = pair(
            self.eng_min,
            self.eng_max,
            "`eng_min` / `eng_max`",
            at,
            errors,
        );
        let valid_range = pair(
            self.valid_min,
            self.valid_max,
            "`valid_min` / `valid_max`",
            at,
            errors,
        );
        let mut fault_codes = Vec::new();
        for code in self
            .fault_codes
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            match code.parse() {
                Ok(c) => fault_codes.push(c),
                Err(_) => errors.push(
                    at,
                    format!("column `fault_codes`: `{code}` is not a whole number ≥ 0 (write them as 65535;32768)"),
                ),
            }
        }
        let classes = parse_classes(&self.classes, at, errors);
        let loop_current = (self.loop_current == Some(true)
            || self.loop_fault_below_ma.is_some()
            || self.loop_fault_above_ma.is_some())
        .then_some(LoopCurrentFile {
            fault_below_ma: self.loop_fault_below_ma,
            fault_above_ma: self.loop_fault_above_ma,
        });
        let alarms = AlarmSettingsFile {
            hh: self.hh,
            h: self.h,
            l: self.l,
            ll: self.ll,
            deadband: self.deadband,
            on_delay_s: self.on_delay_s,
            off_delay_s: self.off_delay_s,
            rate_per_min: self.rate_per_min,
            alarm_on: self.alarm_on,
            fault_delay_s: self.fault_delay_s,
            classes,
        };
        if errors.len() > before {
            return None;
        }
        Some(PointFile {
            id: self.id,
            name: self.name,
            kind: self.kind,
            gas: self.gas.filter(|g| !g.is_empty()),
            device: self.device,
            table: self.table,
            address: self.address,
            data_type: self.data_type,
            word_order: self.word_order.unwrap_or_default(),
            bit: self.bit,
            scale: self.scale,
            offset: self.offset,
            raw_range,
            eng_range,
            decimals: self.decimals,
            loop_current,
            unit: self.unit,
            valid_range,
            fault_codes,
            fault_point: self.fault_point.filter(|f| !f.is_empty()),
            normal: self.normal,
            alarms: (alarms != AlarmSettingsFile::default()).then_some(alarms),
        })
    }

    /// The row of a point as written in a site file (its own settings, not the
    /// defaults it inherits), for `hazgate points export`.
    pub fn from_point(p: &PointFile, hazard_source: Option<&str>) -> Self {
        let a = p.alarms.clone().unwrap_or_default();
        let split = |r: Option<[f64; 2]>| (r.map(|r| r[0]), r.map(|r| r[1]));
        let (raw_min, raw_max) = split(p.raw_range);
        let (eng_min, eng_max) = split(p.eng_range);
        let (valid_min, valid_max) = split(p.valid_range);
        PointRow {
            hazard_source: hazard_source.map(str::to_string),
            id: p.id.clone(),
            name: p.name.clone(),
            kind: p.kind,
            gas: p.gas.clone(),
            device: p.device.clone(),
            table: p.table,
            address: p.address,
            data_type: p.data_type,
            word_order: (p.word_order != WordOrder::default()).then_some(p.word_order),
            bit: p.bit,
            scale: p.scale,
            offset: p.offset,
            raw_min,
            raw_max,
            eng_min,
            eng_max,
            decimals: p.decimals,
            loop_current: p.loop_current.map(|_| true),
            loop_fault_below_ma: p.loop_current.and_then(|l| l.fault_below_ma),
            loop_fault_above_ma: p.loop_current.and_then(|l| l.fault_above_ma),
            unit: p.unit.clone(),
            valid_min,
            valid_max,
            fault_codes: p
                .fault_codes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(";"),
            fault_point: p.fault_point.clone(),
            normal: p.normal,
            hh: a.hh,
            h: a.h,
            l: a.l,
            ll: a.ll,
            deadband: a.deadband,
            on_delay_s: a.on_delay_s,
            off_delay_s: a.off_delay_s,
            rate_per_min: a.rate_per_min,
            alarm_on: a.alarm_on,
            fault_delay_s: a.fault_delay_s,
            classes: a
                .classes
                .iter()
                .map(|(k, c)| format!("{}={}", k.as_str(), c.as_str()))
                .collect::<Vec<_>>()
                .join(";"),
        }
    }
}

/// `hh=critical;h=high` → class overrides.
fn parse_classes(cell: &str, at: &str, errors: &mut Problems) -> BTreeMap<AlarmKind, AlarmClass> {
    let mut out = BTreeMap::new();
    for item in cell.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        let parsed = item.split_once('=').and_then(|(k, c)| {
            let kind = AlarmKind::parse(k.trim())?;
            let class = [AlarmClass::Low, AlarmClass::High, AlarmClass::Critical]
                .into_iter()
                .find(|x| x.as_str() == c.trim())?;
            Some((kind, class))
        });
        match parsed {
            Some((k, c)) => {
                out.insert(k, c);
            }
            None => errors.push(
                at,
                format!("column `classes`: `{item}` is not alarm=class (e.g. hh=critical;h=high; classes low, high, critical)"),
            ),
        }
    }
    out
}

/// Writes points as a CSV table (UTF-8 with the byte-order mark Excel needs to read it
/// as UTF-8), the header first.
pub fn write<W: std::io::Write>(
    out: W,
    rows: impl IntoIterator<Item = PointRow>,
) -> Result<(), csv::Error> {
    let mut out = out;
    out.write_all(b"\xEF\xBB\xBF")?;
    let mut w = csv::Writer::from_writer(out);
    for row in rows {
        w.serialize(row)?;
    }
    w.flush()?;
    Ok(())
}

/// The CSV column(s) that hold a point field, for messages about a row: `alarms.h` is
/// column `h`, `raw_range` is `raw_min` / `raw_max`.
pub fn column_of(field: &str) -> String {
    let field = field.strip_prefix("alarms.").unwrap_or(field);
    match field {
        "raw_range" | "eng_range" | "valid_range" => {
            let base = field.trim_end_matches("_range");
            format!("{base}_min` / `{base}_max")
        }
        "loop_current" => "loop_current".into(),
        f => f.into(),
    }
}
