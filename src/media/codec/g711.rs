//! ITU-T G.711 companding: mu-law (PCMU) and A-law (PCMA).
//!
//! Bit-exact with the ITU-T G.191 Software Tool Library (`g711.c`): decoding expands to
//! 16-bit linear (mu-law 14 bits and A-law 13 bits, left-justified, with the half-step
//! offset), encoding takes the 14 (mu-law) or 13 (A-law) most significant bits and treats
//! negative samples by one's complement exactly as the STL does. PCMU <-> PCMA uses the
//! direct conversion tables of G.711 (Tables 3 and 4), which are not the same as going
//! through linear and back, and avoid a second quantisation. (The STL has no direct
//! converter; the tables are those of the Recommendation, as shipped by spandsp and by the
//! 1994-corrected Sun `g711.c`.)
//!
//! Every slice function converts `min(src.len(), dst.len())` samples and returns that
//! count; nothing here allocates or panics.

/// Decoded value of every mu-law code (G.191 `ulaw_expand`).
pub const ULAW_TO_LINEAR: [i16; 256] = build_ulaw_decode_table();

/// Decoded value of every A-law code (G.191 `alaw_expand`).
pub const ALAW_TO_LINEAR: [i16; 256] = build_alaw_decode_table();

/// Direct mu-law to A-law code conversion (G.711 Table 3).
pub const ULAW_TO_ALAW: [u8; 256] = [
    0x2A, 0x2B, 0x28, 0x29, 0x2E, 0x2F, 0x2C, 0x2D, 0x22, 0x23, 0x20, 0x21, 0x26, 0x27, 0x24, 0x25,
    0x3A, 0x3B, 0x38, 0x39, 0x3E, 0x3F, 0x3C, 0x3D, 0x32, 0x33, 0x30, 0x31, 0x36, 0x37, 0x34, 0x35,
    0x0A, 0x0B, 0x08, 0x09, 0x0E, 0x0F, 0x0C, 0x0D, 0x02, 0x03, 0x00, 0x01, 0x06, 0x07, 0x04, 0x1A,
    0x1B, 0x18, 0x19, 0x1E, 0x1F, 0x1C, 0x1D, 0x12, 0x13, 0x10, 0x11, 0x16, 0x17, 0x14, 0x15, 0x6A,
    0x68, 0x69, 0x6E, 0x6F, 0x6C, 0x6D, 0x62, 0x63, 0x60, 0x61, 0x66, 0x67, 0x64, 0x65, 0x7A, 0x78,
    0x7E, 0x7F, 0x7C, 0x7D, 0x72, 0x73, 0x70, 0x71, 0x76, 0x77, 0x74, 0x75, 0x4B, 0x49, 0x4F, 0x4D,
    0x42, 0x43, 0x40, 0x41, 0x46, 0x47, 0x44, 0x45, 0x5A, 0x5B, 0x58, 0x59, 0x5E, 0x5F, 0x5C, 0x5D,
    0x52, 0x52, 0x53, 0x53, 0x50, 0x50, 0x51, 0x51, 0x56, 0x56, 0x57, 0x57, 0x54, 0x54, 0x55, 0x55,
    0xAA, 0xAB, 0xA8, 0xA9, 0xAE, 0xAF, 0xAC, 0xAD, 0xA2, 0xA3, 0xA0, 0xA1, 0xA6, 0xA7, 0xA4, 0xA5,
    0xBA, 0xBB, 0xB8, 0xB9, 0xBE, 0xBF, 0xBC, 0xBD, 0xB2, 0xB3, 0xB0, 0xB1, 0xB6, 0xB7, 0xB4, 0xB5,
    0x8A, 0x8B, 0x88, 0x89, 0x8E, 0x8F, 0x8C, 0x8D, 0x82, 0x83, 0x80, 0x81, 0x86, 0x87, 0x84, 0x9A,
    0x9B, 0x98, 0x99, 0x9E, 0x9F, 0x9C, 0x9D, 0x92, 0x93, 0x90, 0x91, 0x96, 0x97, 0x94, 0x95, 0xEA,
    0xE8, 0xE9, 0xEE, 0xEF, 0xEC, 0xED, 0xE2, 0xE3, 0xE0, 0xE1, 0xE6, 0xE7, 0xE4, 0xE5, 0xFA, 0xF8,
    0xFE, 0xFF, 0xFC, 0xFD, 0xF2, 0xF3, 0xF0, 0xF1, 0xF6, 0xF7, 0xF4, 0xF5, 0xCB, 0xC9, 0xCF, 0xCD,
    0xC2, 0xC3, 0xC0, 0xC1, 0xC6, 0xC7, 0xC4, 0xC5, 0xDA, 0xDB, 0xD8, 0xD9, 0xDE, 0xDF, 0xDC, 0xDD,
    0xD2, 0xD2, 0xD3, 0xD3, 0xD0, 0xD0, 0xD1, 0xD1, 0xD6, 0xD6, 0xD7, 0xD7, 0xD4, 0xD4, 0xD5, 0xD5,
];

/// Direct A-law to mu-law code conversion (G.711 Table 4).
pub const ALAW_TO_ULAW: [u8; 256] = [
    0x2A, 0x2B, 0x28, 0x29, 0x2E, 0x2F, 0x2C, 0x2D, 0x22, 0x23, 0x20, 0x21, 0x26, 0x27, 0x24, 0x25,
    0x39, 0x3A, 0x37, 0x38, 0x3D, 0x3E, 0x3B, 0x3C, 0x31, 0x32, 0x2F, 0x30, 0x35, 0x36, 0x33, 0x34,
    0x0A, 0x0B, 0x08, 0x09, 0x0E, 0x0F, 0x0C, 0x0D, 0x02, 0x03, 0x00, 0x01, 0x06, 0x07, 0x04, 0x05,
    0x1A, 0x1B, 0x18, 0x19, 0x1E, 0x1F, 0x1C, 0x1D, 0x12, 0x13, 0x10, 0x11, 0x16, 0x17, 0x14, 0x15,
    0x62, 0x63, 0x60, 0x61, 0x66, 0x67, 0x64, 0x65, 0x5D, 0x5D, 0x5C, 0x5C, 0x5F, 0x5F, 0x5E, 0x5E,
    0x74, 0x76, 0x70, 0x72, 0x7C, 0x7E, 0x78, 0x7A, 0x6A, 0x6B, 0x68, 0x69, 0x6E, 0x6F, 0x6C, 0x6D,
    0x48, 0x49, 0x46, 0x47, 0x4C, 0x4D, 0x4A, 0x4B, 0x40, 0x41, 0x3F, 0x3F, 0x44, 0x45, 0x42, 0x43,
    0x56, 0x57, 0x54, 0x55, 0x5A, 0x5B, 0x58, 0x59, 0x4F, 0x4F, 0x4E, 0x4E, 0x52, 0x53, 0x50, 0x51,
    0xAA, 0xAB, 0xA8, 0xA9, 0xAE, 0xAF, 0xAC, 0xAD, 0xA2, 0xA3, 0xA0, 0xA1, 0xA6, 0xA7, 0xA4, 0xA5,
    0xB9, 0xBA, 0xB7, 0xB8, 0xBD, 0xBE, 0xBB, 0xBC, 0xB1, 0xB2, 0xAF, 0xB0, 0xB5, 0xB6, 0xB3, 0xB4,
    0x8A, 0x8B, 0x88, 0x89, 0x8E, 0x8F, 0x8C, 0x8D, 0x82, 0x83, 0x80, 0x81, 0x86, 0x87, 0x84, 0x85,
    0x9A, 0x9B, 0x98, 0x99, 0x9E, 0x9F, 0x9C, 0x9D, 0x92, 0x93, 0x90, 0x91, 0x96, 0x97, 0x94, 0x95,
    0xE2, 0xE3, 0xE0, 0xE1, 0xE6, 0xE7, 0xE4, 0xE5, 0xDD, 0xDD, 0xDC, 0xDC, 0xDF, 0xDF, 0xDE, 0xDE,
    0xF4, 0xF6, 0xF0, 0xF2, 0xFC, 0xFE, 0xF8, 0xFA, 0xEA, 0xEB, 0xE8, 0xE9, 0xEE, 0xEF, 0xEC, 0xED,
    0xC8, 0xC9, 0xC6, 0xC7, 0xCC, 0xCD, 0xCA, 0xCB, 0xC0, 0xC1, 0xBF, 0xBF, 0xC4, 0xC5, 0xC2, 0xC3,
    0xD6, 0xD7, 0xD4, 0xD5, 0xDA, 0xDB, 0xD8, 0xD9, 0xCF, 0xCF, 0xCE, 0xCE, 0xD2, 0xD3, 0xD0, 0xD1,
];

/// G.191 `ulaw_expand` for one code; used to build [`ULAW_TO_LINEAR`] at compile time.
const fn expand_ulaw(code: u8) -> i16 {
    let complement = !code;
    let exponent = ((complement >> 4) & 0x07) as i32;
    let mantissa = (complement & 0x0F) as i32;
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    // Codes below 0x80 are negative (the sign bit is inverted on the line).
    let value = if code < 0x80 { -magnitude } else { magnitude };
    value as i16
}

/// G.191 `alaw_expand` for one code; used to build [`ALAW_TO_LINEAR`] at compile time.
const fn expand_alaw(code: u8) -> i16 {
    let untoggled = (code ^ 0x55) & 0x7F;
    let exponent = (untoggled >> 4) as i32;
    let mut mantissa = (untoggled & 0x0F) as i32;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 0x08;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    let value = if code > 127 { mantissa } else { -mantissa };
    value as i16
}

const fn build_ulaw_decode_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = expand_ulaw(code as u8);
        code += 1;
    }
    table
}

const fn build_alaw_decode_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = expand_alaw(code as u8);
        code += 1;
    }
    table
}

/// Encodes one linear sample to mu-law, bit-exact with G.191 `ulaw_compress`.
#[inline]
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    // All ones for negative samples: XOR with it is the STL's one's complement.
    let sign_mask = sample >> 15;
    let magnitude = (sample ^ sign_mask) as u16;
    // 14-bit magnitude plus the mu-law bias of 33, clipped to 13 bits.
    let mut biased = (magnitude >> 2) as u32 + 33;
    if biased > 0x1FFF {
        biased = 0x1FFF;
    }
    // The STL's segment search is the bit length of `biased` minus 5 (1..=8), since
    // `biased >= 33` always has bit 5 set.
    let segment = 27 - biased.leading_zeros();
    let code = ((8 - segment) << 4) | (0x0F - ((biased >> segment) & 0x0F));
    (code as u8) | (!(sign_mask as u8) & 0x80)
}

/// Encodes one linear sample to A-law, bit-exact with G.191 `alaw_compress`.
#[inline]
pub const fn linear_to_alaw(sample: i16) -> u8 {
    let sign_mask = sample >> 15;
    // 12-bit magnitude (one's complement for negatives, as the STL).
    let magnitude = ((sample ^ sign_mask) as u16 >> 4) as u32;
    let code = if magnitude < 16 {
        magnitude
    } else {
        // Exponent = bit length - 4 (1..=7); the mantissa drops the leading one.
        let exponent = 28 - magnitude.leading_zeros();
        (exponent << 4) | ((magnitude >> (exponent - 1)) & 0x0F)
    };
    ((code as u8) | (!(sign_mask as u8) & 0x80)) ^ 0x55
}

/// Decodes one mu-law code.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Decodes one A-law code.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Decodes mu-law codes into linear samples; returns the number converted.
pub fn decode_ulaw(src: &[u8], dst: &mut [i16]) -> usize {
    map_codes(src, dst, &ULAW_TO_LINEAR)
}

/// Decodes A-law codes into linear samples; returns the number converted.
pub fn decode_alaw(src: &[u8], dst: &mut [i16]) -> usize {
    map_codes(src, dst, &ALAW_TO_LINEAR)
}

/// Encodes linear samples to mu-law; returns the number converted.
pub fn encode_ulaw(src: &[i16], dst: &mut [u8]) -> usize {
    for (code, &sample) in dst.iter_mut().zip(src) {
        *code = linear_to_ulaw(sample);
    }
    src.len().min(dst.len())
}

/// Encodes linear samples to A-law; returns the number converted.
pub fn encode_alaw(src: &[i16], dst: &mut [u8]) -> usize {
    for (code, &sample) in dst.iter_mut().zip(src) {
        *code = linear_to_alaw(sample);
    }
    src.len().min(dst.len())
}

/// Converts mu-law codes to A-law (G.711 Table 3); returns the number converted.
pub fn ulaw_to_alaw(src: &[u8], dst: &mut [u8]) -> usize {
    map_codes(src, dst, &ULAW_TO_ALAW)
}

/// Converts A-law codes to mu-law (G.711 Table 4); returns the number converted.
pub fn alaw_to_ulaw(src: &[u8], dst: &mut [u8]) -> usize {
    map_codes(src, dst, &ALAW_TO_ULAW)
}

/// Converts a mu-law buffer to A-law in place.
pub fn ulaw_to_alaw_in_place(codes: &mut [u8]) {
    map_codes_in_place(codes, &ULAW_TO_ALAW);
}

/// Converts an A-law buffer to mu-law in place.
pub fn alaw_to_ulaw_in_place(codes: &mut [u8]) {
    map_codes_in_place(codes, &ALAW_TO_ULAW);
}

/// Looks every code up in a 256-entry table (a `u8` index can never be out of bounds).
#[inline]
fn map_codes<T: Copy>(src: &[u8], dst: &mut [T], table: &[T; 256]) -> usize {
    for (out, &code) in dst.iter_mut().zip(src) {
        *out = table[usize::from(code)];
    }
    src.len().min(dst.len())
}

#[inline]
fn map_codes_in_place(codes: &mut [u8], table: &[u8; 256]) {
    for code in codes {
        *code = table[usize::from(*code)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Literal port of G.191 `ulaw_compress` (segment search loop) as the reference.
    fn reference_ulaw_compress(sample: i16) -> u8 {
        let sample = i32::from(sample);
        let mut absno = if sample < 0 {
            ((!sample) >> 2) + 33
        } else {
            (sample >> 2) + 33
        };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high_nibble = 0x0008 - segno;
        let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
        let mut code = (high_nibble << 4) | low_nibble;
        if sample >= 0 {
            code |= 0x0080;
        }
        code as u8
    }

    /// Literal port of G.191 `alaw_compress` as the reference.
    fn reference_alaw_compress(sample: i16) -> u8 {
        let sample = i32::from(sample);
        let mut ix = if sample < 0 {
            (!sample) >> 4
        } else {
            sample >> 4
        };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if sample >= 0 {
            ix |= 0x0080;
        }
        (ix ^ 0x0055) as u8
    }

    #[test]
    fn known_decoded_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
        assert_eq!(ulaw_to_linear(0xEF), 132);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0x80), 5504);
        assert_eq!(alaw_to_linear(0xC5), 264);
    }

    #[test]
    fn encoders_match_the_stl_for_every_input() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                linear_to_ulaw(sample),
                reference_ulaw_compress(sample),
                "{sample}"
            );
            assert_eq!(
                linear_to_alaw(sample),
                reference_alaw_compress(sample),
                "{sample}"
            );
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=u8::MAX {
            // 0x7F is mu-law "negative zero": it decodes to 0, which encodes as 0xFF.
            let expected_ulaw = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected_ulaw,
                "{code:#04x}"
            );
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "{code:#04x}");
        }
    }

    #[test]
    fn companding_is_monotonic_and_close() {
        let mut previous_ulaw = i16::MIN;
        let mut previous_alaw = i16::MIN;
        for sample in i16::MIN..=i16::MAX {
            let ulaw = ulaw_to_linear(linear_to_ulaw(sample));
            let alaw = alaw_to_linear(linear_to_alaw(sample));
            assert!(ulaw >= previous_ulaw && alaw >= previous_alaw, "{sample}");
            previous_ulaw = ulaw;
            previous_alaw = alaw;
            // Inside the range (no clipping) the error is at most half of the largest step
            // (1024 for mu-law, 1024 for A-law at 16-bit scale).
            if sample.unsigned_abs() < 32000 {
                assert!(
                    (i32::from(ulaw) - i32::from(sample)).abs() <= 512,
                    "{sample}"
                );
                assert!(
                    (i32::from(alaw) - i32::from(sample)).abs() <= 512,
                    "{sample}"
                );
            }
        }
        // Small signals keep their fine steps (8 for mu-law, 16 for A-law near 100).
        assert_eq!(ulaw_to_linear(linear_to_ulaw(100)), 104);
        assert_eq!(alaw_to_linear(linear_to_alaw(100)), 104);
    }

    #[test]
    fn extreme_inputs_saturate() {
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(32124), 0x80);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
    }

    #[test]
    fn conversion_tables_match_g711_tables_3_and_4() {
        // Spot values of G.711 Table 3 (mu -> A) and Table 4 (A -> mu), including entries
        // where the direct table differs from going through linear (0x20, 0x2F, 0x05) and the
        // two entries corrected in the widely copied Sun tables (0x2F, 0x1A).
        let ulaw_to_alaw_cases = [
            (0x00, 0x2A),
            (0x20, 0x0A),
            (0x2F, 0x1A),
            (0x71, 0x52),
            (0x73, 0x53),
            (0x7F, 0x55),
            (0x80, 0xAA),
            (0xAF, 0x9A),
            (0xFF, 0xD5),
        ];
        for (ulaw, alaw) in ulaw_to_alaw_cases {
            assert_eq!(ULAW_TO_ALAW[ulaw], alaw, "mu {ulaw:#04x}");
        }
        let alaw_to_ulaw_cases = [
            (0x00, 0x2A),
            (0x05, 0x2F),
            (0x1A, 0x2F),
            (0x2A, 0x00),
            (0x48, 0x5D),
            (0x55, 0x7E),
            (0x80, 0xAA),
            (0xAA, 0x80),
            (0xD5, 0xFE),
        ];
        for (alaw, ulaw) in alaw_to_ulaw_cases {
            assert_eq!(ALAW_TO_ULAW[alaw], ulaw, "A {alaw:#04x}");
        }
        // Going through linear would give another code for mu 0x20 (A 0x0B).
        assert_eq!(linear_to_alaw(ulaw_to_linear(0x20)), 0x0B);
    }

    #[test]
    fn conversion_tables_keep_sign_order_and_level() {
        for code in 0..=u8::MAX {
            let c = usize::from(code);
            let flipped = usize::from(code ^ 0x80);
            // Flipping the sign bit of the input flips it in the output.
            assert_eq!(ULAW_TO_ALAW[c] ^ 0x80, ULAW_TO_ALAW[flipped]);
            assert_eq!(ALAW_TO_ULAW[c] ^ 0x80, ALAW_TO_ULAW[flipped]);
            // The converted value stays within one coarse step of the original.
            let from_ulaw =
                i32::from(alaw_to_linear(ULAW_TO_ALAW[c])) - i32::from(ulaw_to_linear(code));
            let from_alaw =
                i32::from(ulaw_to_linear(ALAW_TO_ULAW[c])) - i32::from(alaw_to_linear(code));
            assert!(from_ulaw.abs() <= 1024, "mu {code:#04x}: {from_ulaw}");
            assert!(from_alaw.abs() <= 1024, "A {code:#04x}: {from_alaw}");
        }
        // Monotonic: sort codes by decoded value, converted values must not go down.
        for (table, decode_from, decode_to) in [
            (&ULAW_TO_ALAW, ULAW_TO_LINEAR, ALAW_TO_LINEAR),
            (&ALAW_TO_ULAW, ALAW_TO_LINEAR, ULAW_TO_LINEAR),
        ] {
            let mut codes: Vec<u8> = (0..=u8::MAX).collect();
            codes.sort_by_key(|&c| decode_from[usize::from(c)]);
            let converted: Vec<i16> = codes
                .iter()
                .map(|&c| decode_to[usize::from(table[usize::from(c)])])
                .collect();
            assert!(converted.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn slice_functions_convert_the_common_length() {
        let linear = [0i16, 1000, -1000, 32767, -32768];
        let mut ulaw = [0u8; 5];
        let mut alaw = [0u8; 5];
        assert_eq!(encode_ulaw(&linear, &mut ulaw), 5);
        assert_eq!(encode_alaw(&linear, &mut alaw), 5);
        assert_eq!(ulaw, linear.map(linear_to_ulaw));
        assert_eq!(alaw, linear.map(linear_to_alaw));

        let mut decoded = [0i16; 3];
        assert_eq!(decode_ulaw(&ulaw, &mut decoded), 3);
        assert_eq!(decoded, [0, 988, -988]);
        assert_eq!(decode_alaw(&alaw[..2], &mut decoded), 2);
        assert_eq!(decoded, [8, 1008, -988]);

        let mut converted = [0u8; 5];
        assert_eq!(ulaw_to_alaw(&ulaw, &mut converted), 5);
        let mut in_place = ulaw;
        ulaw_to_alaw_in_place(&mut in_place);
        assert_eq!(in_place, converted);
        assert_eq!(alaw_to_ulaw(&alaw, &mut converted), 5);
        let mut in_place = alaw;
        alaw_to_ulaw_in_place(&mut in_place);
        assert_eq!(in_place, converted);
        assert_eq!(encode_ulaw(&[], &mut converted), 0);
    }
}
