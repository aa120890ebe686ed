//! Fuzzes the state-file decoder: any bytes must decode or give an error, never panic;
//! whatever decodes must re-encode to an equal file. Each input is also tried with its
//! header and CRC repaired, so mutations reach the payload decoder and the bound checks.
#![no_main]

use hikwatch::store::format;
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    if let Ok(f) = format::decode(bytes) {
        assert!(f.records.len() <= format::MAX_CAMERAS);
        let again = format::encode(f.written_at_ms, &f.salt, &f.records)
            .expect("a decoded file re-encodes");
        let back = format::decode(&again).expect("a re-encoded file decodes");
        assert_eq!(back.records, f.records);
        assert_eq!(back.written_at_ms, f.written_at_ms);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= format::HEADER_LEN {
        // Same payload behind a valid header (version from the input's low bit) and CRC.
        let mut fixed = format::MAGIC.to_vec();
        fixed.push(if data[4] & 1 == 0 {
            format::CURRENT_VERSION
        } else {
            format::VERSION_1
        });
        fixed.extend_from_slice(&data[format::HEADER_LEN..]);
        let crc = format::CRC32.checksum(&fixed);
        fixed.extend_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
