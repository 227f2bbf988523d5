//! DTMF: the digit type shared by RFC 4733 events and in-band detection.

pub mod inband;

pub use inband::InbandDetector;

use std::fmt;

/// One DTMF key: `0`-`9`, `*`, `#`, `A`-`D` (RFC 4733 events 0-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(u8);

impl DtmfDigit {
    /// The keys in RFC 4733 event-code order (event 10 is `*`, 11 is `#`).
    const KEYS: &'static [u8; 16] = b"0123456789*#ABCD";

    /// The digit for an RFC 4733 event code (0-15), or `None` for other events.
    pub fn from_event(code: u8) -> Option<Self> {
        Self::KEYS.get(usize::from(code)).map(|_| Self(code))
    }

    /// The digit for a key character (`a`-`d` accepted as `A`-`D`).
    pub fn from_char(key: char) -> Option<Self> {
        let upper = key.to_ascii_uppercase();
        Self::KEYS
            .iter()
            .position(|&k| char::from(k) == upper)
            .and_then(|i| u8::try_from(i).ok())
            .map(Self)
    }

    /// The RFC 4733 event code (0-15).
    pub fn event(self) -> u8 {
        self.0
    }

    /// The key character.
    pub fn as_char(self) -> char {
        char::from(Self::KEYS[usize::from(self.0 & 0x0f)])
    }
}

impl fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_and_characters_map_both_ways() {
        for (code, key) in "0123456789*#ABCD".chars().enumerate() {
            let digit = DtmfDigit::from_event(code as u8).unwrap();
            assert_eq!(digit.as_char(), key);
            assert_eq!(DtmfDigit::from_char(key), Some(digit));
        }
        assert_eq!(DtmfDigit::from_char('b').map(|d| d.event()), Some(13));
        assert_eq!(DtmfDigit::from_event(16), None);
        assert_eq!(DtmfDigit::from_char('x'), None);
    }
}
