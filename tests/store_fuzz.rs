//! Property tests: encode/decode and store round trips, and a byte-mutation fuzz harness
//! for the decoder (raw mutations, and mutations with the CRC repaired so they reach the
//! payload decoder and the bound checks).
//!
//! Cases per property: `HIKWATCH_FUZZ_CASES` (default 256). `scripts/fuzz-store.sh` runs
//! this with a large count when cargo-fuzz is not available.

mod store_support;

use std::fs;
use std::time::{Duration, Instant};

use hikwatch::store::format::{self, MAX_CAMERAS, MAX_ID_LEN, Record, StoredClass, StoredError};
use hikwatch::store::{CameraKey, CameraState, Store, StoreWarning};
use proptest::prelude::*;
use serde::Serialize;
use store_support::{T2025, opts, set_wall, tempdir};

fn cases() -> u32 {
    std::env::var("HIKWATCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // A failing case is printed in full; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn arb_class() -> impl Strategy<Value = StoredClass> {
    prop_oneof![
        Just(StoredClass::Network),
        Just(StoredClass::Timeout),
        any::<Option<u8>>().prop_map(|retries_left| StoredClass::Auth { retries_left }),
        any::<Option<u32>>().prop_map(|secs_left| StoredClass::Locked { secs_left }),
        Just(StoredClass::Resource),
        Just(StoredClass::Unsupported),
        Just(StoredClass::Fatal),
        any::<u32>().prop_map(StoredClass::Unknown),
    ]
}

fn arb_error() -> impl Strategy<Value = Option<StoredError>> {
    proptest::option::of(
        (arb_class(), any::<u32>()).prop_map(|(class, code)| StoredError { class, code }),
    )
}

/// Ids: printable ASCII or any non-control Unicode, within the byte cap.
fn arb_id() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_./-]{1,64}", "\\PC{1,16}"]
        .prop_filter("id rules", |id| format::check_id(id).is_ok())
}

fn arb_record(id: String) -> impl Strategy<Value = Record> {
    (
        any::<Option<u64>>(),
        any::<(u32, u32)>(),
        any::<Option<u64>>(),
        arb_error(),
        any::<bool>(),
        any::<Option<u64>>(),
        any::<(u64, u64)>(),
        any::<Option<u64>>(),
        proptest::option::of("[!-~]{1,128}"),
    )
        .prop_map(
            move |(credential, (a, f), due, e, hold, lock, (rc, la), online, session)| Record {
                id: id.clone(),
                credential,
                attempts: a,
                consecutive_failures: f,
                next_due_ms: due,
                last_error: e,
                auth_hold: hold,
                lock_left_ms: lock,
                reconnects: rc,
                login_attempts: la,
                last_online_ago_ms: online,
                device_session: session.clone(),
            },
        )
}

fn arb_records(max: usize) -> impl Strategy<Value = Vec<Record>> {
    proptest::collection::btree_set(arb_id(), 0..max)
        .prop_flat_map(|ids| ids.into_iter().map(arb_record).collect::<Vec<_>>())
}

fn arb_file() -> impl Strategy<Value = (u64, [u8; 16], Vec<Record>)> {
    (any::<u64>(), any::<[u8; 16]>(), arb_records(12))
}

/// Decoded files satisfy the bounds and re-encode to an equal file.
fn check_decoded(f: &format::StateFile) {
    assert!(f.records.len() <= MAX_CAMERAS);
    for r in &f.records {
        assert!(!r.id.is_empty() && r.id.len() <= MAX_ID_LEN);
    }
    let again =
        format::encode(f.written_at_ms, &f.salt, &f.records).expect("decoded file re-encodes");
    let back = format::decode(&again).expect("re-encoded file decodes");
    assert_eq!(back.records, f.records);
    assert_eq!(back.written_at_ms, f.written_at_ms);
}

/// Rewrites the trailing CRC so the bytes pass the checksum.
fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() < format::HEADER_LEN + format::CRC_LEN {
        return;
    }
    let n = bytes.len() - format::CRC_LEN;
    let crc = format::CRC32.checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
    Splice(usize, Vec<u8>),
}

fn arb_mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let m = prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..12)
        )
            .prop_map(|(i, v)| Mutation::Splice(i, v)),
    ];
    proptest::collection::vec(m, 1..5)
}

fn mutate(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let len = bytes.len();
        match m {
            Mutation::Flip(i, b) if len > 0 => bytes[i % len] ^= 1 << b,
            Mutation::Set(i, v) if len > 0 => bytes[i % len] = *v,
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            Mutation::Insert(i, v) => bytes.insert(i % (len + 1), *v),
            Mutation::Remove(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Mutation::Splice(i, v) => {
                let at = i % (len + 1);
                let end = (at + v.len()).min(len);
                bytes.splice(at..end, v.iter().copied());
            }
            _ => {}
        }
    }
}

/// The version-1 layout, written independently of the crate (which only decodes v1).
#[derive(Clone, Debug, Serialize)]
enum ClassV1 {
    Network,
    Timeout,
    Auth,
    Locked,
    Resource,
    Unsupported,
    Fatal,
    Unknown,
}

#[derive(Clone, Debug, Serialize)]
struct RecordV1 {
    id: String,
    attempts: u32,
    consecutive_failures: u32,
    next_due_s: Option<u32>,
    last_error: Option<(ClassV1, u32)>,
    auth_hold: bool,
    lock_left_s: Option<u32>,
    reconnects: u32,
    login_attempts: u32,
}

#[derive(Serialize)]
struct PayloadV1<'a> {
    written_at_s: u64,
    records: &'a [RecordV1],
}

fn encode_v1(written_at_s: u64, records: &[RecordV1]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let n = postcard::to_slice(
        &PayloadV1 {
            written_at_s,
            records,
        },
        &mut buf,
    )
    .expect("v1 encodes")
    .len();
    let mut out = b"HKWS\x01".to_vec();
    out.extend_from_slice(&buf[..n]);
    let crc = format::CRC32.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn arb_class_v1() -> impl Strategy<Value = ClassV1> {
    prop_oneof![
        Just(ClassV1::Network),
        Just(ClassV1::Timeout),
        Just(ClassV1::Auth),
        Just(ClassV1::Locked),
        Just(ClassV1::Resource),
        Just(ClassV1::Unsupported),
        Just(ClassV1::Fatal),
        Just(ClassV1::Unknown),
    ]
}

fn arb_v1_file() -> impl Strategy<Value = (u64, Vec<RecordV1>)> {
    let records = proptest::collection::btree_set(arb_id(), 0..12).prop_flat_map(|ids| {
        ids.into_iter()
            .map(|id| {
                (
                    any::<(u32, u32, bool, u32, u32)>(),
                    any::<Option<u32>>(),
                    proptest::option::of((arb_class_v1(), any::<u32>())),
                    any::<Option<u32>>(),
                )
                    .prop_map(move |((a, f, hold, rc, la), due, e, lock)| {
                        RecordV1 {
                            id: id.clone(),
                            attempts: a,
                            consecutive_failures: f,
                            next_due_s: due,
                            last_error: e,
                            auth_hold: hold,
                            lock_left_s: lock,
                            reconnects: rc,
                            login_attempts: la,
                        }
                    })
            })
            .collect::<Vec<_>>()
    });
    (any::<u64>(), records)
}

/// The migration rules of the format docs, written out independently.
fn migrated(r: &RecordV1) -> Record {
    Record {
        id: r.id.clone(),
        credential: None,
        attempts: r.attempts,
        consecutive_failures: r.consecutive_failures,
        next_due_ms: r.next_due_s.map(|s| u64::from(s) * 1000),
        last_error: r.last_error.as_ref().map(|(c, code)| StoredError {
            class: match c {
                ClassV1::Network => StoredClass::Network,
                ClassV1::Timeout => StoredClass::Timeout,
                ClassV1::Auth => StoredClass::Auth { retries_left: None },
                ClassV1::Locked => StoredClass::Locked { secs_left: None },
                ClassV1::Resource => StoredClass::Resource,
                ClassV1::Unsupported => StoredClass::Unsupported,
                ClassV1::Fatal => StoredClass::Fatal,
                ClassV1::Unknown => StoredClass::Unknown(*code),
            },
            code: *code,
        }),
        auth_hold: r.auth_hold,
        lock_left_ms: r.lock_left_s.map(|s| u64::from(s) * 1000),
        reconnects: u64::from(r.reconnects),
        login_attempts: u64::from(r.login_attempts),
        last_online_ago_ms: None,
        device_session: None,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn v1_files_migrate((written_s, records) in arb_v1_file()) {
        let f = format::decode(&encode_v1(written_s, &records)).expect("v1 decodes");
        prop_assert_eq!(f.version, format::VERSION_1);
        prop_assert_eq!(f.written_at_ms, written_s.saturating_mul(1000));
        let want: Vec<Record> = records.iter().map(migrated).collect();
        prop_assert_eq!(f.records, want);
    }

    #[test]
    fn decoder_survives_mutated_v1_files((written_s, records) in arb_v1_file(), muts in arb_mutations(), fix in any::<bool>()) {
        let mut bytes = encode_v1(written_s, &records);
        mutate(&mut bytes, &muts);
        if fix {
            fix_crc(&mut bytes);
        }
        if let Ok(f) = format::decode(&bytes) {
            check_decoded(&f);
        }
    }

    #[test]
    fn encode_decode_round_trip((written, salt, records) in arb_file()) {
        let bytes = format::encode(written, &salt, &records).expect("encodes");
        prop_assert!(bytes.len() <= format::MAX_FILE_LEN);
        let f = format::decode(&bytes).expect("decodes");
        prop_assert_eq!(f.version, format::CURRENT_VERSION);
        prop_assert_eq!(f.written_at_ms, written);
        prop_assert_eq!(f.salt, salt);
        prop_assert_eq!(f.records, records);
    }

    #[test]
    fn decoder_survives_raw_mutations((written, salt, records) in arb_file(), muts in arb_mutations()) {
        let mut bytes = format::encode(written, &salt, &records).expect("encodes");
        mutate(&mut bytes, &muts);
        if let Ok(f) = format::decode(&bytes) {
            check_decoded(&f);
        }
    }

    #[test]
    fn decoder_survives_mutations_past_the_crc(
        (written, salt, records) in arb_file(),
        muts in arb_mutations(),
        v1 in any::<bool>(),
    ) {
        let mut bytes = format::encode(written, &salt, &records).expect("encodes");
        if v1 {
            bytes[4] = format::VERSION_1;
        }
        mutate(&mut bytes, &muts);
        fix_crc(&mut bytes);
        if let Ok(f) = format::decode(&bytes) {
            check_decoded(&f);
        }
    }

    #[test]
    fn decoder_survives_random_bytes(mut bytes in proptest::collection::vec(any::<u8>(), 0..300), header in any::<bool>(), v in 0u8..4) {
        if header && bytes.len() >= 5 {
            bytes[..4].copy_from_slice(&format::MAGIC);
            bytes[4] = v;
            fix_crc(&mut bytes);
        }
        if let Ok(f) = format::decode(&bytes) {
            check_decoded(&f);
        }
    }
}

fn arb_wait() -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of((1u64..86_400_000).prop_map(Duration::from_millis))
}

fn arb_state() -> impl Strategy<Value = CameraState> {
    (
        any::<(u32, u32)>(),
        proptest::option::of((0u64..86_400_000).prop_map(Duration::from_millis)),
        arb_error(),
        any::<bool>(),
        arb_wait(),
        any::<(u64, u64)>(),
        proptest::option::of((0u64..1u64 << 40).prop_map(Duration::from_millis)),
    )
        .prop_map(
            |((a, f), due, e, hold, lock, (rc, la), online)| CameraState {
                attempts: a,
                consecutive_failures: f,
                next_due_in: due,
                last_error: e,
                auth_hold: hold,
                lock_left: lock,
                reconnects: rc,
                login_attempts: la,
                last_online_ago: online,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases().div_ceil(8), ..config() })]

    /// Whatever the supervisor stores comes back unchanged after a restart at the same
    /// wall time.
    #[test]
    fn store_round_trip(states in proptest::collection::btree_map(arb_id(), arb_state(), 0..10)) {
        let dir = tempdir("prop");
        let path = dir.join("state");
        set_wall(T2025);
        let keys: Vec<CameraKey<'_>> = states
            .keys()
            .map(|id| CameraKey { id, user: "u", password: b"p" })
            .collect();
        let t0 = Instant::now();
        let (mut store, _) = Store::open(&path, opts(), &keys, t0);
        for (id, st) in &states {
            store.update(id, st, t0).expect("update");
        }
        store.flush(t0).expect("flush");
        let t1 = Instant::now();
        let (store2, loaded) = Store::open(&path, opts(), &keys, t1);
        prop_assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        for (id, st) in &states {
            let got = store2.get(id, t1);
            prop_assert_eq!(got.as_ref(), Some(st), "{}", id);
        }
        fs::remove_dir_all(&dir).ok();
    }

    /// A mutated file on disk never panics or blocks `Store::open`: it either loads
    /// quietly or gives one bad-file warning and is set aside.
    #[test]
    fn store_open_survives_mutated_files((written, salt, records) in arb_file(), muts in arb_mutations(), fix in any::<bool>()) {
        let dir = tempdir("propopen");
        let path = dir.join("state");
        let mut bytes = format::encode(written, &salt, &records).expect("encodes");
        mutate(&mut bytes, &muts);
        if fix {
            fix_crc(&mut bytes);
        }
        fs::write(&path, &bytes).expect("write");
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let keys: Vec<CameraKey<'_>> = ids.iter().map(|id| CameraKey { id, user: "u", password: b"p" }).collect();
        let (_, loaded) = Store::open(&path, opts(), &keys, Instant::now());
        prop_assert_eq!(loaded.cameras.len(), keys.len());
        match format::decode(&bytes) {
            Ok(_) => {
                let bad = loaded.warnings.iter().any(|w| matches!(w, StoreWarning::BadFile { .. }));
                prop_assert!(!bad, "{:?}", loaded.warnings);
            }
            Err(e) => {
                prop_assert_eq!(loaded.warnings.len(), 1);
                let text = loaded.warnings[0].to_string();
                prop_assert!(text.contains(&e.to_string()), "{}", text);
                prop_assert!(!path.exists());
            }
        }
        fs::remove_dir_all(&dir).ok();
    }
}
