//! The fuzz targets' checks replayed over their checked-in corpora (`fuzz/corpus/…`), so
//! every CI run exercises them without a nightly toolchain. Each corpus must also reach
//! the accepting path, not only the refusals. `cargo +nightly fuzz run TARGET` grows a
//! corpus; `cargo +nightly fuzz cmin TARGET` keeps it small before it is checked in.

mod common;

#[path = "../fuzz/checks/command.rs"]
mod command;
#[path = "../fuzz/checks/history_chunk.rs"]
mod history_chunk;
#[path = "../fuzz/checks/ingest_message.rs"]
mod ingest_message;
#[path = "../fuzz/checks/modbus_response.rs"]
mod modbus_response;
#[path = "../fuzz/checks/points_csv.rs"]
mod points_csv;
#[path = "../fuzz/checks/store_answer.rs"]
mod store_answer;

/// Runs `check` over every file of the target's corpus: (inputs, accepted).
fn replay(target: &str, check: fn(&[u8]) -> bool) -> (usize, usize) {
    let dir = common::root().join("fuzz/corpus").join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let mut accepted = 0;
    for path in &entries {
        let data = std::fs::read(path).unwrap();
        let ok = std::panic::catch_unwind(|| check(&data))
            .unwrap_or_else(|_| panic!("{} fails its check", path.display()));
        accepted += usize::from(ok);
        if ok && std::env::var_os("HAZGATE_LIST_ACCEPTED").is_some() {
            println!("accepted {}", path.display());
        }
    }
    (entries.len(), accepted)
}

#[test]
fn command_corpus() {
    let (n, ok) = replay("command", command::check);
    assert!(n >= 10 && ok >= 7, "{n} inputs, {ok} accepted");
}

#[test]
fn ingest_message_corpus() {
    let (n, ok) = replay("ingest_message", ingest_message::check);
    assert!(n >= 10 && ok >= 7, "{n} inputs, {ok} accepted");
}

#[test]
fn modbus_response_corpus() {
    let (n, ok) = replay("modbus_response", modbus_response::check);
    assert!(n >= 5 && ok >= 3, "{n} inputs, {ok} accepted");
}

#[test]
fn points_csv_corpus() {
    let (n, ok) = replay("points_csv", points_csv::check);
    assert!(n >= 10 && ok >= 4, "{n} inputs, {ok} accepted");
}

#[test]
fn store_answer_corpus() {
    let (n, ok) = replay("store_answer", store_answer::check);
    assert!(n >= 10 && ok >= 4, "{n} inputs, {ok} accepted");
}

#[test]
fn history_chunk_corpus() {
    let (n, ok) = replay("history_chunk", history_chunk::check);
    assert!(n >= 5 && ok >= 3, "{n} inputs, {ok} accepted");
}
