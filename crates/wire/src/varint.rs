//! rsync's integer encodings: fixed int32/int64, varint, varlong(min_bytes), shortint, vstring.
//!
//! Encoders append to a `Vec<u8>`; decoders read from any [`Read`] and bound what they accept.

use std::io::Read;

use crate::error::{Error, Result};

/// For a varint lead byte `b`, how many extra bytes follow: indexed by `b / 4`.
const INT_BYTE_EXTRA: [u8; 64] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0x00-0x3F
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0x40-0x7F
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x80-0xBF
    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 6, // 0xC0-0xFF
];

/// Appends a little-endian int32.
pub fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends rsync's `write_longint`: an int32, or `0xFFFFFFFF` then an int64 for large values.
pub fn put_longint(out: &mut Vec<u8>, v: i64) {
    if (0..=0x7FFF_FFFF).contains(&v) {
        put_i32(out, v as i32);
    } else {
        put_i32(out, -1);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends a 16-bit little-endian value (rsync's `write_shortint`).
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a varint: 1 to 5 bytes, the count of extra bytes in the high bits of the first one.
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_var(out, &v.to_le_bytes(), 1);
}

/// Appends a varlong with at least `min_bytes` bytes (1..=8).
pub fn put_varlong(out: &mut Vec<u8>, v: i64, min_bytes: u8) {
    put_var(out, &v.to_le_bytes(), min_bytes as usize);
}

/// Protocol ≥ 30 form of a file-list 64-bit value (`write_varlong30`).
pub fn put_varlong30(out: &mut Vec<u8>, v: i64, min_bytes: u8) {
    put_varlong(out, v, min_bytes);
}

/// Shared body of varint/varlong: `le` holds the value's little-endian bytes.
fn put_var(out: &mut Vec<u8>, le: &[u8], min_bytes: usize) {
    // b[1..] = value bytes; b[0] = lead byte.
    let mut b = [0u8; 9];
    b[1..=le.len()].copy_from_slice(le);
    let mut cnt = le.len();
    while cnt > min_bytes && b[cnt] == 0 {
        cnt -= 1;
    }
    let bit: u32 = 1 << (7 + min_bytes - cnt);
    if u32::from(b[cnt]) >= bit {
        cnt += 1;
        b[0] = !(bit - 1) as u8;
    } else if cnt > min_bytes {
        b[0] = b[cnt] | !(bit * 2 - 1) as u8;
    } else {
        b[0] = b[cnt];
    }
    out.extend_from_slice(&b[..cnt]);
}

/// Appends a vstring: length (1 byte, or 2 with the high bit set when > 127), then bytes.
pub fn put_vstring(out: &mut Vec<u8>, s: &[u8]) -> Result<()> {
    let len = s.len();
    if len > 0x7FFF {
        return Err(Error::Protocol(format!(
            "string too long to send: {len} bytes"
        )));
    }
    if len > 0x7F {
        out.push((len / 0x100 + 0x80) as u8);
    }
    out.push(len as u8);
    out.extend_from_slice(s);
    Ok(())
}

/// Decoding helpers over any byte source. Every read is exact; EOF is an error.
pub trait ReadWire: Read {
    /// Reads exactly `buf.len()` bytes.
    fn read_all(&mut self, buf: &mut [u8]) -> Result<()> {
        self.read_exact(buf)
            .map_err(|e| crate::mux::from_io(e, "reading from peer"))
    }

    fn read_u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_all(&mut b)?;
        Ok(b[0])
    }

    fn read_u16(&mut self) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read_all(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn read_i32(&mut self) -> Result<i32> {
        let mut b = [0u8; 4];
        self.read_all(&mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    /// rsync's `read_longint`.
    fn read_longint(&mut self) -> Result<i64> {
        let v = self.read_i32()?;
        if v != -1 {
            return Ok(i64::from(v));
        }
        let mut b = [0u8; 8];
        self.read_all(&mut b)?;
        Ok(i64::from_le_bytes(b))
    }

    fn read_varint(&mut self) -> Result<i32> {
        let lead = self.read_u8()?;
        let extra = INT_BYTE_EXTRA[usize::from(lead / 4)] as usize;
        let mut b = [0u8; 5];
        if extra == 0 {
            b[0] = lead;
        } else {
            if extra >= 5 {
                return Err(Error::Stream("overflow in varint".into()));
            }
            self.read_all(&mut b[..extra])?;
            let bit = 1u8 << (8 - extra);
            b[extra] = lead & (bit - 1);
        }
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A varint that must lie in `lo..=hi`.
    fn read_varint_in(&mut self, lo: i32, hi: i32, what: &str) -> Result<i32> {
        let v = self.read_varint()?;
        if v < lo || v > hi {
            return Err(Error::Protocol(format!(
                "wire value {what} out of range: {v} not in [{lo},{hi}]"
            )));
        }
        Ok(v)
    }

    fn read_varlong(&mut self, min_bytes: u8) -> Result<i64> {
        let min = usize::from(min_bytes.clamp(1, 8));
        let mut head = [0u8; 8];
        self.read_all(&mut head[..min])?;
        let mut b = [0u8; 9];
        b[..min - 1].copy_from_slice(&head[1..min]);
        let lead = head[0];
        let extra = INT_BYTE_EXTRA[usize::from(lead / 4)] as usize;
        if extra == 0 {
            b[min - 1] = lead;
        } else {
            if min + extra > 9 {
                return Err(Error::Stream("overflow in varlong".into()));
            }
            self.read_all(&mut b[min - 1..min - 1 + extra])?;
            let bit = 1u8 << (8 - extra);
            b[min + extra - 1] = lead & (bit - 1);
        }
        Ok(i64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// Reads a vstring of at most `max` bytes.
    fn read_vstring(&mut self, max: usize) -> Result<Vec<u8>> {
        let mut len = usize::from(self.read_u8()?);
        if len & 0x80 != 0 {
            len = ((len & 0x7F) << 8) | usize::from(self.read_u8()?);
        }
        if len > max {
            return Err(Error::Protocol(format!("string too long: {len} > {max}")));
        }
        let mut s = vec![0u8; len];
        self.read_all(&mut s)?;
        Ok(s)
    }
}

impl<R: Read + ?Sized> ReadWire for R {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn varint(v: i32) -> Vec<u8> {
        let mut o = Vec::new();
        put_varint(&mut o, v);
        o
    }

    fn varlong(v: i64, m: u8) -> Vec<u8> {
        let mut o = Vec::new();
        put_varlong(&mut o, v, m);
        o
    }

    #[test]
    fn varint_table() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (0x7F, &[0x7F]),
            (0x80, &[0x80, 0x80]),
            (0x1FE, &[0x81, 0xFE]),
            (0x3FFF, &[0xBF, 0xFF]),
            (0x4000, &[0xC0, 0x00, 0x40]),
            (0x1F_FFFF, &[0xDF, 0xFF, 0xFF]),
            (0x20_0000, &[0xE0, 0x00, 0x00, 0x20]),
            (0x0FFF_FFFF, &[0xEF, 0xFF, 0xFF, 0xFF]),
            (0x1000_0000, &[0xF0, 0x00, 0x00, 0x00, 0x10]),
            (-1, &[0xF0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ];
        for &(v, want) in cases {
            assert_eq!(varint(v), want, "encoding {v:#x}");
            assert_eq!(
                (&mut &want[..]).read_varint().unwrap(),
                v,
                "decoding {v:#x}"
            );
        }
    }

    #[test]
    fn varlong_table() {
        let cases: &[(i64, u8, &[u8])] = &[
            (0, 3, &[0, 0, 0]),
            (5, 3, &[0, 5, 0]),
            (0x7F_FFFF, 3, &[0x7F, 0xFF, 0xFF]),
            (0x80_0000, 3, &[0x80, 0, 0, 0x80]),
            (1_700_000_000, 4, &[0x65, 0x00, 0xF1, 0x53]),
            (0x1_0000_0000, 4, &[0x81, 0, 0, 0, 0]),
        ];
        for &(v, m, want) in cases {
            assert_eq!(varlong(v, m), want, "encoding {v:#x}/{m}");
            assert_eq!((&mut &want[..]).read_varlong(m).unwrap(), v);
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for bytes in [&[0x80u8][..], &[0xF0, 1, 2], &[], &[0xC0, 0]] {
            assert!((&mut &bytes[..]).read_varint().is_err());
        }
        assert!((&mut &[0xFCu8, 0, 0, 0][..]).read_varint().is_err());
        assert!((&mut &[0xFFu8, 0, 0, 0, 0, 0, 0, 0, 0][..])
            .read_varlong(4)
            .is_err());
    }

    #[test]
    fn vstring_lengths() {
        for len in [0usize, 1, 127, 128, 300, 0x7FFF] {
            let s = vec![b'x'; len];
            let mut o = Vec::new();
            put_vstring(&mut o, &s).unwrap();
            assert_eq!(o.len(), len + if len > 127 { 2 } else { 1 });
            assert_eq!((&mut &o[..]).read_vstring(0x7FFF).unwrap(), s);
        }
        let mut o = Vec::new();
        put_vstring(&mut o, &[b'a'; 300]).unwrap();
        assert!((&mut &o[..]).read_vstring(256).is_err());
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v in any::<i32>()) {
            prop_assert_eq!((&mut &varint(v)[..]).read_varint().unwrap(), v);
        }

        #[test]
        fn varlong_roundtrip(v in any::<i64>(), m in 3u8..=8) {
            prop_assert_eq!((&mut &varlong(v, m)[..]).read_varlong(m).unwrap(), v);
        }

        #[test]
        fn small_varlong_roundtrip(v in 0i64..(1 << 40), m in 1u8..=2) {
            prop_assert_eq!((&mut &varlong(v, m)[..]).read_varlong(m).unwrap(), v);
        }

        #[test]
        fn longint_roundtrip(v in any::<i64>()) {
            let mut o = Vec::new();
            put_longint(&mut o, v);
            prop_assert_eq!((&mut &o[..]).read_longint().unwrap(), v);
        }

        #[test]
        fn varint_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            let _ = (&mut &bytes[..]).read_varint();
            let _ = (&mut &bytes[..]).read_varlong(3);
            let _ = (&mut &bytes[..]).read_vstring(100);
        }
    }
}
