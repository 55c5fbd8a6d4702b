//! The daemon's dealings with glibc's allocator and the kernel's page cache: what it
//! does so that a gateway's resident memory is what the daemon uses, not what loading
//! a site left behind. Measured with `bench/sidebyside.sh` (RSS and RssAnon).
//!
//! The crate's few unsafe calls are here (lints deny unsafe code elsewhere).

/// Parsing a large site file builds a transient TOML tree many times the size of the
/// compiled site (≈ 50 MB for 10,000 points); glibc keeps such freed arenas mapped.
/// Handing them back once after loading keeps a gateway's steady RSS at what it uses.
#[allow(unsafe_code)]
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no
    // live allocation and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// While a site loads, freed small blocks are merged with their neighbours at once
/// rather than kept in glibc's per-size "fast bins". Compiling a site frees a great many
/// small blocks (the TOML tree's strings and tables) between the blocks it keeps; left
/// in fast bins they pin whole pages that `malloc_trim` cannot hand back. At 50,000
/// points the main arena held 32.8 MB after loading, 18.2 MB with this. Only for the
/// load: kept on, fast bins' absence cost about 3 % of the daemon's CPU.
pub(super) struct CoalescingFrees;

/// glibc's default fast-bin limit on 64-bit targets (`64 * sizeof(size_t) / 4`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const DEFAULT_MXFAST: i32 = 64 * size_of::<usize>() as i32 / 4;

impl CoalescingFrees {
    #[allow(unsafe_code)]
    pub(super) fn new() -> Self {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets an allocator parameter; glibc documents M_MXFAST as
        // changeable at any time (it consolidates the bins itself).
        unsafe {
            libc::mallopt(libc::M_MXFAST, 0);
        }
        Self
    }
}

impl Drop for CoalescingFrees {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: as in `new`.
        unsafe {
            libc::mallopt(libc::M_MXFAST, DEFAULT_MXFAST);
        }
    }
}

/// glibc gives threads that allocate their own arenas (up to 8 per core), and memory
/// freed in one arena is not reused by another. On a gateway — tokio's workers, the
/// spool's thread, the blocking pool — two arenas held 24 MB less at 50,000 points than
/// the default, and one 30 MB less (`bench/sidebyside.sh`). Three: the runtime's, the
/// spool's thread's, and one that a site load's parsing thread takes for itself (with
/// two it shared one with the compiled site, and the freed tree stayed resident around
/// it: 50,000 points in TOML 122 vs 102 MB).
///
/// glibc also raises its mmap threshold each time a large block is freed (up to
/// 32 MB), so after loading a site — many large vectors built and dropped — the
/// per-point tables came from the heap and left it fragmented. A fixed 128 KiB keeps
/// large blocks in mappings of their own, handed back whole when freed: at 50,000
/// points steady RSS 71 → 64 MB (`bench/sidebyside.sh`).
#[allow(unsafe_code)]
pub(super) fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called first thing in main,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 3);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Start-up — the command line, reading and compiling the site file, checking it —
/// runs code the daemon never runs again, and the kernel reads a program's code ahead
/// and maps it 64 KiB around each page faulted in. At 10,000 points 10 of the daemon's
/// 20 MB of RSS were its program file's pages, most of them not run after start-up.
/// Once started, the program's read-only pages (code and constants) are handed back to
/// the kernel (`MADV_PAGEOUT`), with read-ahead off for the code (`MADV_RANDOM`) so that
/// what the daemon still runs comes back a page at a time rather than 128 KiB around
/// it. The kernel drops the pages it can and leaves the rest mapped: at 10,000 points
/// the file's pages resident went 10.2 → 7.0–7.4 MB started from a cold page cache,
/// → 3.8 MB just after the binary was written. Code and constants are clean file
/// pages: nothing is written for them. The one read-only mapping with written pages —
/// the constants the loader relocated at start — goes to swap where a system has swap,
/// and stays resident where it has none. A page dropped is read back the first time it
/// is used again (a code path such as an alarm's not taken yet), once. Under a cgroup
/// memory limit (systemd's `MemoryMax`) those pages were charged to the service.
/// Returns the bytes advised.
#[cfg(all(target_os = "linux", feature = "edge"))]
pub(super) fn release_start_up_code() -> std::io::Result<usize> {
    own_read_only_mappings(|start, len, perms| {
        if perms == "r-xp" {
            advise(start, len, libc::MADV_RANDOM)?;
        }
        advise(start, len, libc::MADV_PAGEOUT)
    })
}

/// Calls `f(start, len, perms)` for each of the program file's read-only mappings
/// (code and constants, as `/proc/self/maps` lists them); the bytes they span.
#[cfg(all(target_os = "linux", feature = "edge"))]
fn own_read_only_mappings(
    mut f: impl FnMut(usize, usize, &str) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::metadata("/proc/self/exe")?.ino().to_string();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut spanned = 0;
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(range), Some(&perms), Some(inode)) =
            (fields.first(), fields.get(1), fields.get(4))
        else {
            continue;
        };
        if *inode != exe || !matches!(perms, "r-xp" | "r--p") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        f(start, end - start, perms)?;
        spanned += end - start;
    }
    Ok(spanned)
}

#[cfg(all(target_os = "linux", feature = "edge"))]
#[allow(unsafe_code)]
fn advise(start: usize, len: usize, advice: libc::c_int) -> std::io::Result<()> {
    // SAFETY: the range is one of this process's own read-only mappings of its program
    // file, as /proc/self/maps listed it; MADV_PAGEOUT and MADV_RANDOM change no
    // contents (a page dropped is read back, unchanged, on the next access).
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, advice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(all(not(target_os = "linux"), feature = "edge"))]
pub(super) fn release_start_up_code() -> std::io::Result<usize> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux", feature = "edge"))]
mod tests {
    /// The program's own read-only mappings are found and handed back, and the
    /// program goes on running.
    #[test]
    fn start_up_code_is_found_and_handed_back() {
        let advised = super::release_start_up_code().unwrap();
        assert!(advised > 0, "no mapping of the program's code was found");
        assert_eq!(super::release_start_up_code().unwrap(), advised);
    }
}
