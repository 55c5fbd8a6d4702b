//! The history's files: a directory of segments, each a run of framed chunks, written
//! by appending and dropped whole, oldest first.
//!
//! Plain append-only files rather than a database: `hazgate export` and the local API
//! read them while the daemon writes (a redb file admits one process), a `kill -9`
//! can only tear the frame being written (its CRC tells, and reading stops there),
//! and retention is deleting a file. Each start writes a new segment; none is ever
//! appended to after a crash.
//!
//! Frame: `magic "HZ" · kind u8 · len u32 · crc32 u32 (of kind, times and payload) ·
//! first ts i64 · last ts i64 · payload[len]`, little-endian. The times let a reader
//! skip a frame outside its span without decompressing it.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

const MAGIC: [u8; 2] = *b"HZ";
const HEADER: usize = 2 + 1 + 4 + 4 + 8 + 8;
/// A frame larger than this is damage, not data (a chunk is one commit window).
const MAX_FRAME: usize = 64 << 20;
/// Slice-by-16: the same checksum, computed several times faster than byte by byte (a
/// month's replay reads gigabytes).
static CRC: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A chunk of readings ([`super::codec`]).
    Readings = 1,
    /// The judge's events as JSON lines, LZ4-compressed.
    Events = 2,
}

/// One frame read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub kind: Kind,
    pub first: i64,
    pub last: i64,
    pub payload: Vec<u8>,
}

/// A segment's file name: its first moment, so names sort by time.
pub fn name(start_ms: i64) -> String {
    format!("{start_ms:013}.hzh")
}

/// The segments of `dir`, oldest first, with their start times and sizes.
pub fn list(dir: &Path) -> io::Result<Vec<(i64, PathBuf, u64)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let start = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".hzh"))
            .and_then(|n| n.parse::<i64>().ok());
        if let Some(start) = start {
            out.push((start, path, e.metadata()?.len()));
        }
    }
    out.sort_by_key(|(s, _, _)| *s);
    Ok(out)
}

/// Appends frames to the newest segment.
pub struct SegmentWriter {
    file: File,
    pub path: PathBuf,
    pub start: i64,
    pub bytes: u64,
}

impl SegmentWriter {
    /// A new segment starting at `start_ms` (a name already taken gets the next
    /// millisecond).
    pub fn create(dir: &Path, mut start_ms: i64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        loop {
            let path = dir.join(name(start_ms));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(Self {
                        file,
                        path,
                        start: start_ms,
                        bytes: 0,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => start_ms += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes one frame (not yet synced): its header, then the payload as it is.
    pub fn append(&mut self, kind: Kind, first: i64, last: i64, payload: &[u8]) -> io::Result<()> {
        let mut header = [0u8; HEADER];
        header[..2].copy_from_slice(&MAGIC);
        header[2] = kind as u8;
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        header[3..7].copy_from_slice(&len.to_le_bytes());
        header[7..11].copy_from_slice(&crc(kind as u8, first, last, payload).to_le_bytes());
        header[11..19].copy_from_slice(&first.to_le_bytes());
        header[19..27].copy_from_slice(&last.to_le_bytes());
        self.file.write_all(&header)?;
        self.file.write_all(payload)?;
        self.bytes += (HEADER + payload.len()) as u64;
        Ok(())
    }

    /// Makes what was appended durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

fn crc(kind: u8, first: i64, last: i64, payload: &[u8]) -> u32 {
    let mut d = CRC.digest();
    d.update(&[kind]);
    d.update(&first.to_le_bytes());
    d.update(&last.to_le_bytes());
    d.update(payload);
    d.finalize()
}

/// Reads a segment's frames; stops at the first that is torn or damaged (the tail a
/// crash left), saying so in the second value.
pub fn read(path: &Path) -> io::Result<(Vec<Frame>, Option<String>)> {
    read_where(path, |_, _, _| true)
}

/// [`read`], keeping only the frames `want(kind, first, last)` accepts: the others are
/// stepped over, neither checked nor copied.
pub fn read_where(
    path: &Path,
    want: impl Fn(Kind, i64, i64) -> bool,
) -> io::Result<(Vec<Frame>, Option<String>)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match frame_where(&bytes[at..], &want) {
            Ok((f, used)) => {
                frames.extend(f);
                at += used;
            }
            Err(why) => {
                return Ok((
                    frames,
                    Some(format!("{}: at byte {at}: {why}", path.display())),
                ))
            }
        }
    }
    Ok((frames, None))
}

/// The frame at the start of `b`, and how many bytes it took.
pub fn frame_at(b: &[u8]) -> Result<(Frame, usize), &'static str> {
    let (f, used) = frame_where(b, &|_, _, _| true)?;
    f.map(|f| (f, used)).ok_or("not a frame")
}

/// The frame at the start of `b` if `want` accepts it, and how many bytes it took.
fn frame_where(
    b: &[u8],
    want: &dyn Fn(Kind, i64, i64) -> bool,
) -> Result<(Option<Frame>, usize), &'static str> {
    if b.len() < HEADER {
        return Err("a frame cut short");
    }
    if b[..2] != MAGIC {
        return Err("not a frame");
    }
    let kind = match b[2] {
        1 => Kind::Readings,
        2 => Kind::Events,
        _ => return Err("an unknown kind of frame"),
    };
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let long = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        i64::from_le_bytes(w)
    };
    let len = word(3) as usize;
    if len > MAX_FRAME {
        return Err("a frame longer than any written");
    }
    let (first, last) = (long(11), long(19));
    let Some(payload) = b.get(HEADER..HEADER + len) else {
        return Err("a frame cut short");
    };
    if !want(kind, first, last) {
        return Ok((None, HEADER + len));
    }
    if crc(b[2], first, last, payload) != word(7) {
        return Err("a frame whose checksum is wrong");
    }
    Ok((
        Some(Frame {
            kind,
            first,
            last,
            payload: payload.to_vec(),
        }),
        HEADER + len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crash tears the frame being written: every frame before it reads back, and
    /// the tear is reported, not taken for data.
    #[test]
    fn a_torn_tail_is_reported_and_what_came_before_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1_000).unwrap();
        w.append(Kind::Readings, 1, 2, b"one").unwrap();
        w.append(Kind::Events, 3, 4, b"two").unwrap();
        w.sync().unwrap();
        let again = SegmentWriter::create(dir.path(), 1_000).unwrap();
        assert_eq!(again.start, 1_001, "a taken name is not reused");
        let len = std::fs::metadata(&w.path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&w.path).unwrap();
        f.set_len(len - 2).unwrap();
        let (frames, torn) = read(&w.path).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].kind, frames[0].first, &frames[0].payload[..]),
            (Kind::Readings, 1, &b"one"[..])
        );
        assert!(torn.unwrap().contains("cut short"));
        // A flipped bit is caught by the checksum.
        let mut bytes = std::fs::read(&w.path).unwrap();
        bytes[HEADER + 1] ^= 1;
        std::fs::write(&w.path, &bytes).unwrap();
        let (frames, torn) = read(&w.path).unwrap();
        assert!(frames.is_empty());
        assert!(torn.unwrap().contains("checksum"));
        let names: Vec<i64> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(s, _, _)| s)
            .collect();
        assert_eq!(names, [1_000, 1_001]);
    }
}
