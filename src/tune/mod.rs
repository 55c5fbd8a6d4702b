//! `hazgate tune`: the safety engineer's threshold workbench. A history — the
//! gateway's own, an export of it, or the centre's store — is replayed through the
//! judge's own core with the settings that were live and with candidate settings; the
//! alarm figures of ISA-18.2 / EEMUA 191 are counted for each, and what a candidate
//! would have missed is put first.
//!
//! [`mark`] is the one vocabulary of what happened (an alarm raised or cleared, a colour
//! changed), read from the judge's events live or replayed; [`recorded`] reads a
//! history's events into the operator actions a replay applies again and the live marks
//! it is checked against; [`candidate`] parses `--set` and candidate files; [`replay`]
//! drives the engine (pure, clock injected); [`kpi`] counts; [`compare`] finds what a
//! candidate misses or delays; [`suggest`] derives deadbands and on-delays from the
//! data; [`report`] writes the terminal summary and the JSON, [`html`] the page.

pub mod candidate;
#[cfg(feature = "centre")]
pub mod central;
pub mod compare;
pub mod html;
pub mod kpi;
pub mod look;
pub mod mark;
pub mod record;
pub mod recorded;
pub mod replay;
pub mod report;
pub mod source;
pub mod suggest;
