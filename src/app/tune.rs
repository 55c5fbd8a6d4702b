//! `hazgate tune`: reads a history (the gateway's own, an export, or the centre's
//! store), replays it with today's settings and each candidate, and writes the report
//! (terminal, JSON, HTML) and, when asked, the chosen candidate's `thresholds` command.

use std::{path::Path, process::ExitCode, sync::Arc};

use anyhow::Context as _;

use crate::{
    cli::TuneArgs,
    history::store,
    model::Site,
    reading::{Reading, Timestamp},
    tune::{
        candidate::{self, Candidate},
        html,
        kpi::Options,
        recorded::{self, Recorded},
        report::{self, Inputs},
        source::{History, Memory, Source},
    },
};

pub async fn tune(a: &TuneArgs) -> anyhow::Result<ExitCode> {
    let site = super::load(&a.config)?;
    let from = super::cli_time(&a.from, "from")?;
    let to = match &a.to {
        Some(t) => super::cli_time(t, "to")?,
        None => Timestamp::now().0,
    };
    anyhow::ensure!(from < to, "--from must be before --to");
    let mut candidates: Vec<Candidate> = candidate::from_sets(&a.sets)?.into_iter().collect();
    for f in &a.candidates {
        candidates.push(candidate::from_file(f)?);
    }
    let start = from - i64::try_from(a.warmup_s).unwrap_or(0) * 1000;
    let (history, mut source, recorded) = read_history(a, &site, start, to).await?;
    let options = Options {
        fleeting_ms: (a.fleeting_s * 1000.0) as i64,
        ..Options::default()
    };
    let tolerance_ms = a.tolerance_ms;
    let (report, page) = tokio::task::spawn_blocking(move || {
        let (r, look) = report::build(&mut Inputs {
            site: site.clone(),
            history,
            readings: source.as_mut(),
            recorded: &recorded,
            start,
            from,
            to,
            options,
            tolerance_ms,
            candidates: &candidates,
        })?;
        let page = html::page(&r, &site, &look);
        anyhow::Ok((r, page))
    })
    .await??;
    print!("{}", report::summary(&report));
    if let Some(p) = &a.json {
        write(p, &serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(p) = &a.html {
        write(p, page.as_bytes())?;
    }
    if let Some(p) = &a.emit_command {
        emit(p, &report, a.choose)?;
    }
    let refused = report.candidates.iter().any(|c| c.refused.is_some());
    Ok(if refused {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn write(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    eprintln!("hazgate: wrote {}", p.display());
    Ok(())
}

/// The `thresholds` command of the chosen candidate, with the report's id, for the
/// local API (`POST /api/v1/commands/thresholds`) or MQTT (`…/cmd/thresholds`).
fn emit(p: &Path, r: &report::Report, choose: usize) -> anyhow::Result<()> {
    let c = choose
        .checked_sub(1)
        .and_then(|i| r.candidates.get(i))
        .with_context(|| {
            format!(
                "--choose {choose}: there are {} candidates",
                r.candidates.len()
            )
        })?;
    if let Some(why) = &c.refused {
        anyhow::bail!("--emit-command: candidate `{}` was refused: {why}", c.name);
    }
    let cmd = serde_json::json!({
        "request_id": format!("{}-{choose}", r.id),
        "tune_report": r.id,
        "changes": c.changes,
    });
    write(p, &serde_json::to_vec_pretty(&cmd)?)
}

/// The history from where the arguments say: a description, the readings (from
/// `from`, the start of the warm-up, to `to`), and the recorded events.
async fn read_history(
    a: &TuneArgs,
    site: &Arc<Site>,
    from: i64,
    to: i64,
) -> anyhow::Result<(String, Box<dyn Source>, Recorded)> {
    if let Some(p) = &a.input {
        let (readings, events) = super::export::read_jsonl(site, p)?;
        let mut readings: Vec<Reading> = readings
            .into_iter()
            .filter(|r| (from..=to).contains(&r.ts.0))
            .collect();
        readings.sort_by_key(|r| (r.ts.0, r.point.0));
        let memory: Box<dyn Source> = Box::new(Memory(readings));
        return Ok((p.display().to_string(), memory, recorded::read(&events)));
    }
    #[cfg(feature = "centre")]
    if let Some(url) = &a.victoriametrics {
        let r = crate::tune::central::victoriametrics(site, url, from, to).await?;
        return Ok((url.clone(), Box::new(Memory(r)), Recorded::default()));
    }
    #[cfg(feature = "centre")]
    if let (Some(url), Some(db)) = (&a.influxql, &a.database) {
        let r = crate::tune::central::influxql(site, url, db, from, to).await?;
        return Ok((
            format!("{url} {db}"),
            Box::new(Memory(r)),
            Recorded::default(),
        ));
    }
    #[cfg(not(feature = "centre"))]
    if a.victoriametrics.is_some() || a.influxql.is_some() {
        anyhow::bail!("this build has no centre half: read the centre's store with the full build");
    }
    let h = site.history.as_ref().with_context(|| {
        format!(
            "{}: no [history], and no --input: nothing to replay",
            a.config.display()
        )
    })?;
    let (events, notes) = store::events(&h.path, from, to)
        .with_context(|| format!("cannot read the history in {}", h.path.display()))?;
    for d in &notes.damaged {
        eprintln!("hazgate: left out, damaged: {d}");
    }
    let source = History {
        dir: h.path.clone(),
        from,
        to,
    };
    Ok((
        h.path.display().to_string(),
        Box::new(source),
        recorded::read(&events),
    ))
}
