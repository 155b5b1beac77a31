//! Fuzz target for the capture-file reader, `capture::pcap_file::PcapFileSource`.
//!
//! The input is a whole file (legacy pcap or pcapng, told apart by its magic number, as
//! netwarden does for any file). It is written to a scratch file and read to the end.
//! Beyond "does not panic", the reader must keep the promises the pipeline relies on:
//! every frame's bytes lie within the file and its wire length covers them; the number
//! of frames is bounded by the file's size; the end is sticky and explained; progress
//! stays within 0..=1; and reading the same bytes twice gives the same frames.

#![no_main]

use std::io::Write as _;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netwarden::capture::pcap_file::{Ending, MAX_RECORD_BYTES, PcapFileSource};
use netwarden::capture::{Next, Source};
use netwarden::decode::LinkType;

/// The smallest record that can carry a frame: a legacy pcap record header (16 bytes).
/// pcapng packet blocks are larger (a simple packet block is 16 bytes too).
const MIN_RECORD_BYTES: usize = 16;

/// What one read of a file produced: per frame (timestamp, link type, wire length, bytes
/// hash), and whether opening or reading failed.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<(u64, LinkType, u32, u64)>,
    failed: bool,
}

/// FNV-1a: cheap, and enough to tell two frames' bytes apart.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn read_all(path: &Path, file_len: usize) -> Outcome {
    let mut outcome = Outcome {
        frames: Vec::new(),
        failed: false,
    };
    let Ok(mut source) = PcapFileSource::open(path) else {
        outcome.failed = true;
        return outcome;
    };
    let max_frames = file_len / MIN_RECORD_BYTES;
    loop {
        if let Some(p) = source.progress() {
            assert!((0.0..=1.0).contains(&p), "progress {p} out of range");
        }
        match source.next() {
            Ok(Next::Frame(frame)) => {
                assert!(frame.data.len() <= file_len, "frame longer than the file");
                assert!(frame.data.len() <= MAX_RECORD_BYTES);
                let wire_len = usize::try_from(frame.wire_len).unwrap_or(usize::MAX);
                assert!(wire_len >= frame.data.len(), "wire length below captured");
                outcome.frames.push((
                    frame.ts.as_nanos(),
                    frame.link,
                    frame.wire_len,
                    hash(frame.data),
                ));
                assert!(
                    outcome.frames.len() <= max_frames,
                    "more frames than records fit in {file_len} bytes"
                );
            }
            Ok(Next::Idle) => panic!("a file never idles"),
            Ok(Next::End) => {
                assert!(source.ending().is_some(), "an end says how the file ended");
                if source.ending() == Some(&Ending::Complete) {
                    assert_eq!(source.progress(), Some(1.0), "complete means all read");
                }
                assert!(
                    matches!(source.next(), Ok(Next::End)),
                    "the end of a file is final"
                );
                return outcome;
            }
            Err(_) => {
                outcome.failed = true;
                return outcome;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // One scratch file per fuzzing process, on tmpfs where there is one.
    let dir = if Path::new("/dev/shm").is_dir() {
        Path::new("/dev/shm")
    } else {
        Path::new("/tmp")
    };
    let path = dir.join(format!("netwarden-fuzz-pcap-{}", std::process::id()));
    let mut file = std::fs::File::create(&path).expect("scratch file");
    file.write_all(data).expect("scratch file written");
    drop(file);
    let first = read_all(&path, data.len());
    assert_eq!(read_all(&path, data.len()), first, "reading is deterministic");
});
