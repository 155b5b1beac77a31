//! Classic libpcap file output (the format `tcpdump -w` writes).
//!
//! Owns [`PcapWriter`]: the 24-byte global header (magic `a1b2c3d4`, version 2.4,
//! microsecond timestamps, snaplen 262144, a chosen link type) and one 16-byte record header
//! per frame. Everything is little-endian regardless of the host, so the same frames give the
//! same file everywhere.
//! Does not own: pcapng, nanosecond pcaps, or reading (see `capture`).
//!
//! Buffering: the writer wraps its sink in its own [`BufWriter`], so pass a bare `File`.
//! Call [`PcapWriter::finish`] at the end: dropping the writer flushes too, but loses the
//! error of that last write.

use std::io::{self, BufWriter, Write};

use netwarden::timestamp::Timestamp;

/// Largest frame stored whole; longer frames are cut and keep their original length.
pub const SNAPLEN: u32 = 262_144;

/// Default buffer size: large enough that a 4 GB file costs a few thousand `write` calls.
const DEFAULT_BUFFER_BYTES: usize = 4 << 20;

/// A pcap `LINKTYPE_*` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PcapLinkType(pub u32);

impl PcapLinkType {
    /// `LINKTYPE_ETHERNET`.
    pub const ETHERNET: PcapLinkType = PcapLinkType(1);
    /// `LINKTYPE_RAW`: frames start with an IPv4 or IPv6 header.
    pub const RAW: PcapLinkType = PcapLinkType(101);
    /// `LINKTYPE_LINUX_SLL`: Linux cooked capture v1.
    pub const LINUX_SLL: PcapLinkType = PcapLinkType(113);
}

impl Default for PcapLinkType {
    fn default() -> PcapLinkType {
        PcapLinkType::ETHERNET
    }
}

/// Writes frames to a classic pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a pcap stream on `inner` with a 4 MiB buffer and writes the global header.
    pub fn new(inner: W, link_type: PcapLinkType) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_capacity(DEFAULT_BUFFER_BYTES, inner, link_type)
    }

    /// Like [`PcapWriter::new`] with a buffer of `capacity` bytes.
    pub fn with_capacity(
        capacity: usize,
        inner: W,
        link_type: PcapLinkType,
    ) -> io::Result<PcapWriter<W>> {
        let mut out = BufWriter::with_capacity(capacity, inner);
        out.write_all(&global_header(link_type))?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame captured at `ts` (stored with microsecond precision, truncated).
    ///
    /// # Errors
    /// I/O errors of the sink, and `InvalidInput` for a timestamp past 2106 (pcap stores
    /// seconds in 32 bits).
    pub fn write_frame(&mut self, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let nanos = ts.as_nanos();
        let secs = u32::try_from(nanos / 1_000_000_000).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "timestamp beyond the pcap range",
            )
        })?;
        let micros = u32::try_from(nanos % 1_000_000_000 / 1_000).unwrap_or(0);
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let mut record = [0u8; 16];
        for (slot, value) in record
            .chunks_exact_mut(4)
            .zip([secs, micros, incl_len, orig_len])
        {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        self.out.write_all(&record)?;
        let stored = data
            .get(..usize::try_from(incl_len).unwrap_or(0))
            .unwrap_or(data);
        self.out.write_all(stored)
    }

    /// Flushes the buffer and returns the sink.
    pub fn finish(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

/// The 24-byte global header.
fn global_header(link_type: PcapLinkType) -> [u8; 24] {
    let mut header = [0u8; 24];
    let fields: [[u8; 4]; 6] = [
        0xa1b2_c3d4u32.to_le_bytes(),
        [2, 0, 4, 0], // version 2.4, as two little-endian u16
        [0; 4],       // thiszone: UTC
        [0; 4],       // sigfigs
        SNAPLEN.to_le_bytes(),
        link_type.0.to_le_bytes(),
    ];
    for (slot, field) in header.chunks_exact_mut(4).zip(fields) {
        slot.copy_from_slice(&field);
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_header_bytes() {
        let writer = PcapWriter::new(Vec::new(), PcapLinkType::ETHERNET).unwrap();
        let bytes = writer.finish().unwrap();
        assert_eq!(
            bytes,
            [
                0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian, microseconds
                0x02, 0x00, 0x04, 0x00, // version 2.4
                0, 0, 0, 0, 0, 0, 0, 0, // thiszone, sigfigs
                0x00, 0x00, 0x04, 0x00, // snaplen 262144
                0x01, 0x00, 0x00, 0x00, // LINKTYPE_ETHERNET
            ]
        );
    }

    #[test]
    fn link_type_is_configurable() {
        for (lt, byte) in [(PcapLinkType::RAW, 101), (PcapLinkType::LINUX_SLL, 113)] {
            let bytes = PcapWriter::new(Vec::new(), lt).unwrap().finish().unwrap();
            assert_eq!(&bytes[20..24], &[byte, 0, 0, 0]);
        }
    }

    #[test]
    fn record_header_and_data() {
        let mut writer = PcapWriter::new(Vec::new(), PcapLinkType::RAW).unwrap();
        let ts = Timestamp::from_secs_nanos(1_767_225_600, 123_456_789);
        writer.write_frame(ts, &[9, 8, 7]).unwrap();
        let bytes = writer.finish().unwrap();
        let record = &bytes[24..];
        assert_eq!(&record[0..4], &1_767_225_600u32.to_le_bytes());
        assert_eq!(
            &record[4..8],
            &123_456u32.to_le_bytes(),
            "microseconds, truncated"
        );
        assert_eq!(&record[8..12], &3u32.to_le_bytes());
        assert_eq!(&record[12..16], &3u32.to_le_bytes());
        assert_eq!(&record[16..], &[9, 8, 7]);
    }

    #[test]
    fn oversized_frame_is_cut_to_snaplen() {
        let mut writer = PcapWriter::new(Vec::new(), PcapLinkType::ETHERNET).unwrap();
        let frame = vec![0u8; 300_000];
        writer.write_frame(Timestamp::ZERO, &frame).unwrap();
        let bytes = writer.finish().unwrap();
        assert_eq!(&bytes[32..36], &SNAPLEN.to_le_bytes());
        assert_eq!(&bytes[36..40], &300_000u32.to_le_bytes());
        assert_eq!(bytes.len(), 24 + 16 + 262_144);
    }

    #[test]
    fn timestamp_past_2106_is_refused() {
        let mut writer = PcapWriter::new(Vec::new(), PcapLinkType::ETHERNET).unwrap();
        let err = writer
            .write_frame(Timestamp::from_secs_nanos(1 << 32, 0), &[0])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
