//! `hazgate export`: the gateway's history from one time to another, as CSV (readings,
//! for a spreadsheet), JSON lines (readings and the judge's events, in time order) or
//! line protocol (readings, as the centre's store holds them: `docs/storage.md`).

use std::{
    collections::HashSet,
    io::{BufWriter, Write},
    path::Path,
    process::ExitCode,
};

use anyhow::Context as _;
use serde::Deserialize as _;

use crate::{
    cli::ExportFormat,
    contract::vocab,
    history::store,
    line::Point as Line,
    model::{PointIndex, Site},
    reading::{Quality, RangeFlag, Reading, Timestamp, Value},
};

pub fn export(
    config: &Path,
    from: &str,
    to: Option<&str>,
    points: &[String],
    format: ExportFormat,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let site = super::load(config)?;
    let Some(h) = &site.history else {
        anyhow::bail!(
            "{}: no [history]: this gateway keeps none (add [history] path = …)",
            config.display()
        );
    };
    let from = super::cli_time(from, "from")?;
    let to = match to {
        Some(t) => super::cli_time(t, "to")?,
        None => Timestamp::now().0,
    };
    anyhow::ensure!(from <= to, "--from is after --to");
    let mut wanted = HashSet::new();
    for p in points {
        let point = site
            .point_by_id(p)
            .with_context(|| format!("--point `{p}`: no such point in {}", config.display()))?;
        wanted.insert(point.index);
    }
    let (readings, mut notes) = store::readings(&h.path, from, to, |p: PointIndex| {
        wanted.is_empty() || wanted.contains(&p)
    })
    .with_context(|| format!("cannot read the history in {}", h.path.display()))?;
    let events = if format == ExportFormat::Jsonl && wanted.is_empty() {
        let (e, n) = store::events(&h.path, from, to)?;
        notes.damaged.extend(n.damaged);
        e
    } else {
        Vec::new()
    };
    for d in &notes.damaged {
        eprintln!("hazgate: left out, damaged: {d}");
    }
    let mut w: BufWriter<Box<dyn Write>> = BufWriter::new(match out {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    });
    match format {
        ExportFormat::Csv => csv(&mut w, &site, &readings)?,
        ExportFormat::Jsonl => jsonl(&mut w, &site, &readings, &events)?,
        ExportFormat::LineProtocol => line_protocol(&mut w, &site, &readings)?,
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn value_text(v: Option<Value>) -> String {
    match v {
        Some(Value::Analog(x)) => x.to_string(),
        Some(Value::Discrete(b)) => u8::from(b).to_string(),
        None => String::new(),
    }
}

fn range_text(r: RangeFlag) -> &'static str {
    match r {
        RangeFlag::Within => "",
        RangeFlag::Over => "over",
        RangeFlag::Under => "under",
    }
}

/// UTF-8 with a byte-order mark, so a Chinese-locale Excel reads the names.
fn csv(w: &mut impl Write, site: &Site, readings: &[Reading]) -> anyhow::Result<()> {
    w.write_all("\u{feff}".as_bytes())?;
    let mut c = ::csv::Writer::from_writer(w);
    c.write_record([
        "time",
        "point",
        "hazard_source",
        "kind",
        "value",
        "unit",
        "quality",
        "range",
    ])?;
    for r in readings {
        let p = site.point(r.point);
        c.write_record([
            r.ts.to_rfc3339().as_str(),
            p.id.as_str(),
            p.source_id.as_str(),
            p.kind.as_str(),
            &value_text(r.value),
            &p.unit,
            r.quality.as_str(),
            range_text(r.range),
        ])?;
    }
    c.flush()?;
    Ok(())
}

/// Readings and events in one time order; an event keeps the judge's own form.
fn jsonl(
    w: &mut impl Write,
    site: &Site,
    readings: &[Reading],
    events: &[String],
) -> anyhow::Result<()> {
    let mut lines: Vec<(i64, String)> = Vec::with_capacity(readings.len() + events.len());
    for r in readings {
        let p = site.point(r.point);
        let mut v = serde_json::json!({
            "type": "reading", "ts": r.ts.to_rfc3339(), "point": p.id.as_str(),
            "hazard_source": p.source_id.as_str(), "kind": p.kind.as_str(),
            "value": r.value.map(|v| match v {
                Value::Analog(x) => serde_json::json!(x),
                Value::Discrete(b) => serde_json::json!(b),
            }),
            "unit": &*p.unit, "quality": r.quality.as_str(),
        });
        if let Quality::DeviceException(code) = r.quality {
            v["exception"] = code.into();
        }
        if r.range != RangeFlag::Within {
            v["range"] = range_text(r.range).into();
        }
        lines.push((r.ts.0, v.to_string()));
    }
    for e in events {
        let ts = serde_json::from_str::<serde_json::Value>(e)
            .ok()
            .and_then(|v| serde_json::from_value::<Timestamp>(v["ts"].clone()).ok())
            .map_or(i64::MAX, |t| t.0);
        lines.push((ts, e.clone()));
    }
    lines.sort_by_key(|(t, _)| *t);
    for (_, l) in lines {
        writeln!(w, "{l}")?;
    }
    Ok(())
}

/// The store schema's `reading` measurement (`docs/storage.md`), ms timestamps.
fn line_protocol(w: &mut impl Write, site: &Site, readings: &[Reading]) -> anyhow::Result<()> {
    let g = &site.gateway;
    let mut buf = Vec::new();
    for r in readings {
        let p = site.point(r.point);
        let mut l = Line::new("reading")
            .tag("park", &g.park_id)
            .tag("enterprise", &g.enterprise_id)
            .tag("gateway", &g.gateway_id)
            .tag("hazard_source", p.source_id.as_str())
            .tag("point", p.id.as_str())
            .tag("kind", p.kind.as_str())
            .tag("device", p.device_id.as_str())
            .field("quality", vocab::Quality::from(r.quality).code())
            .field("good", i64::from(r.quality == Quality::Good));
        if !p.unit.is_empty() {
            l = l.tag("unit", &p.unit);
        }
        if let Some(v) = r.value {
            l = l.field("value", v.as_f64());
        }
        if let Quality::DeviceException(code) = r.quality {
            l = l.field("exception", i64::from(code));
        }
        match r.range {
            RangeFlag::Over => l = l.field("over_range", 1i64),
            RangeFlag::Under => l = l.field("under_range", 1i64),
            RangeFlag::Within => {}
        }
        buf.clear();
        l.write(&mut buf, r.ts.0);
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Reads a `--format jsonl` export back: its readings (in the file's order) and its
/// events' texts. A line that is not one of them is an error naming the line.
pub fn read_jsonl(site: &Site, path: &Path) -> anyhow::Result<(Vec<Reading>, Vec<String>)> {
    use std::io::BufRead as _;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut readings = Vec::new();
    let mut events = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}: not JSON", path.display(), n + 1))?;
        if v["type"] == "reading" {
            let r = reading_of(site, &v)
                .with_context(|| format!("{}: line {}", path.display(), n + 1))?;
            readings.push(r);
        } else {
            events.push(line);
        }
    }
    Ok((readings, events))
}

fn reading_of(site: &Site, v: &serde_json::Value) -> anyhow::Result<Reading> {
    let id = v["point"].as_str().context("no `point`")?;
    let point = site
        .point_by_id(id)
        .with_context(|| format!("point `{id}` is not in the site file"))?;
    let ts = v["ts"]
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .context("no RFC 3339 `ts`")?;
    let value = match &v["value"] {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(Value::Discrete(*b)),
        x => Some(Value::Analog(
            x.as_f64().context("`value` is not a number")?,
        )),
    };
    let quality = vocab::Quality::deserialize(&v["quality"])
        .map_err(|e| anyhow::anyhow!("`quality`: {e}"))?
        .reading(v["exception"].as_u64().unwrap_or(0) as u8);
    let range = match v["range"].as_str() {
        Some("over") => RangeFlag::Over,
        Some("under") => RangeFlag::Under,
        _ => RangeFlag::Within,
    };
    Ok(Reading {
        point: point.index,
        value,
        quality,
        ts,
        raw: crate::reading::Raw::None,
        range,
    })
}
