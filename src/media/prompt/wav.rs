//! WAV decoding (with `hound`) to mono i16 at an internal rate.
//!
//! Accepted: integer PCM of 8, 16, 24 or 32 bits and 32-bit float, any number of channels
//! (averaged to mono), any rate from 4 kHz to 192 kHz (converted by the windowed-sinc
//! resampler in `resample.rs`). An 8 kHz mono 16-bit file, like the built-in set, is
//! copied as it is.
//! A data chunk that ends early (a file cut off in transfer, a header written before the
//! length was known) is decoded up to the last complete frame.

use std::io::Cursor;

use hound::{SampleFormat, WavReader};

use super::resample::resample;
use super::{PromptError, SampleRate, UnsupportedFormat};

/// Lowest accepted source rate.
pub const MIN_RATE_HZ: u32 = 4_000;
/// Highest accepted source rate.
pub const MAX_RATE_HZ: u32 = 192_000;
/// Longest accepted prompt: long enough for any music on hold, short enough that a stray
/// huge file cannot eat the daemon's memory.
pub const MAX_PROMPT_SECONDS: u32 = 30 * 60;

/// Decodes the WAV file `bytes` to mono i16 samples at `rate`; `name` labels errors.
pub fn decode_wav(name: &str, bytes: &[u8], rate: SampleRate) -> Result<Vec<i16>, PromptError> {
    if bytes.get(..4) != Some(b"RIFF".as_slice()) || bytes.get(8..12) != Some(b"WAVE".as_slice()) {
        return Err(PromptError::NotWav {
            name: name.to_owned(),
        });
    }
    let mut reader = WavReader::new(Cursor::new(bytes)).map_err(|e| header_error(name, e))?;
    let spec = reader.spec();
    if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&spec.sample_rate) {
        return Err(unsupported(
            name,
            UnsupportedFormat::SampleRate(spec.sample_rate),
        ));
    }
    let channels = usize::from(spec.channels.max(1));
    // The header's length is a claim (streaming writers put a placeholder there): count
    // only the frames the bytes can hold, and never reserve more.
    let frame_bytes = channels * usize::from(spec.bits_per_sample.div_ceil(8).max(1));
    let frames = usize::try_from(reader.duration())
        .unwrap_or(usize::MAX)
        .min(bytes.len() / frame_bytes);
    let max_frames = MAX_PROMPT_SECONDS as usize * spec.sample_rate as usize;
    if frames > max_frames {
        return Err(PromptError::TooLong {
            name: name.to_owned(),
            max_seconds: MAX_PROMPT_SECONDS,
        });
    }

    let target = rate.hz();
    let samples = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, 16) if channels == 1 && spec.sample_rate == target => {
            let mut out = Vec::with_capacity(frames);
            for sample in reader.samples::<i16>() {
                match sample {
                    Ok(v) => out.push(v),
                    Err(hound::Error::IoError(_)) => break, // cut short: keep what we have
                    Err(e) => return Err(data_error(name, e)),
                }
            }
            out
        }
        (SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            let mono = downmix(reader.samples::<i32>(), channels, frames, |v| {
                v as f32 * scale
            })
            .map_err(|e| data_error(name, e))?;
            to_i16(&resample(&mono, spec.sample_rate, target))
        }
        (SampleFormat::Float, 32) => {
            let mono = downmix(reader.samples::<f32>(), channels, frames, |v| {
                if v.is_finite() {
                    v
                } else {
                    0.0
                }
            })
            .map_err(|e| data_error(name, e))?;
            to_i16(&resample(&mono, spec.sample_rate, target))
        }
        (format, bits) => {
            return Err(unsupported(
                name,
                UnsupportedFormat::SampleWidth {
                    bits,
                    float: format == SampleFormat::Float,
                },
            ))
        }
    };
    if samples.is_empty() {
        return Err(PromptError::Empty {
            name: name.to_owned(),
        });
    }
    Ok(samples)
}

/// Averages each frame of `channels` interleaved samples to one value in -1.0..1.0.
/// Stops at the first incomplete frame of a data chunk that ends early.
fn downmix<S>(
    samples: impl Iterator<Item = Result<S, hound::Error>>,
    channels: usize,
    capacity: usize,
    to_unit: impl Fn(S) -> f32,
) -> Result<Vec<f32>, hound::Error> {
    let mut mono = Vec::with_capacity(capacity);
    let mut sum = 0.0f32;
    let mut in_frame = 0;
    for sample in samples {
        match sample {
            Ok(v) => sum += to_unit(v),
            Err(hound::Error::IoError(_)) => break,
            Err(e) => return Err(e),
        }
        in_frame += 1;
        if in_frame == channels {
            mono.push(sum / channels as f32);
            sum = 0.0;
            in_frame = 0;
        }
    }
    Ok(mono)
}

fn to_i16(samples: &[f32]) -> Vec<i16> {
    // `as` saturates (and maps NaN to 0), which is the clipping we want.
    samples
        .iter()
        .map(|&v| (v * 32768.0).round() as i16)
        .collect()
}

fn unsupported(name: &str, format: UnsupportedFormat) -> PromptError {
    PromptError::Unsupported {
        name: name.to_owned(),
        format,
    }
}

/// Maps an error from reading the header and format chunk.
fn header_error(name: &str, error: hound::Error) -> PromptError {
    let name = name.to_owned();
    match error {
        hound::Error::FormatError("no RIFF tag found" | "no WAVE tag found") => {
            PromptError::NotWav { name }
        }
        hound::Error::FormatError(reason) => PromptError::Malformed { name, reason },
        hound::Error::IoError(_) => PromptError::Malformed {
            name,
            reason: "ends before the data chunk",
        },
        hound::Error::Unsupported => PromptError::Unsupported {
            name,
            format: UnsupportedFormat::Encoding,
        },
        _ => PromptError::Malformed {
            name,
            reason: "invalid format chunk",
        },
    }
}

/// Maps an error from reading samples (the format was accepted, so this is a bad width).
fn data_error(name: &str, error: hound::Error) -> PromptError {
    match error {
        hound::Error::FormatError(reason) => PromptError::Malformed {
            name: name.to_owned(),
            reason,
        },
        _ => PromptError::Malformed {
            name: name.to_owned(),
            reason: "sample width does not match the format",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hound::{WavSpec, WavWriter};
    use std::f64::consts::TAU;

    fn wav_bytes<S: hound::Sample + Copy>(
        rate: u32,
        channels: u16,
        bits: u16,
        format: SampleFormat,
        samples: &[S],
    ) -> Vec<u8> {
        let spec = WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        cursor.into_inner()
    }

    fn tone(rate: u32, seconds: f64, parts: &[(f64, f64)]) -> Vec<f64> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                parts.iter().map(|(hz, a)| a * (TAU * hz * t).sin()).sum()
            })
            .collect()
    }

    use crate::media::test_util::{db, tone_amplitude as amplitude};

    #[test]
    fn a_16_khz_wav_loads_at_8_khz_without_aliasing() {
        // 1 kHz at 8000 and 6 kHz at 8000: the 6 kHz part would fold to 2 kHz.
        let signal: Vec<i16> = tone(16_000, 1.0, &[(1000.0, 8000.0), (6000.0, 8000.0)])
            .iter()
            .map(|&v| v.round() as i16)
            .collect();
        let bytes = wav_bytes(16_000, 1, 16, SampleFormat::Int, &signal);
        let out = decode_wav("test.wav", &bytes, SampleRate::Narrowband).unwrap();
        assert_eq!(out.len(), 8000);
        let body = &out[400..7600];
        assert!(db(amplitude(body, 1000.0, 8000.0) / 8000.0).abs() < 0.1);
        let folded = amplitude(body, 2000.0, 8000.0);
        assert!(db(folded / 8000.0) < -70.0, "{} dB", db(folded / 8000.0));
        // The 1 kHz tone crosses zero 2000 times a second.
        let crossings = body.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((1798..=1802).contains(&crossings), "{crossings}");
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        // Left: 500 Hz, right: silence; then both channels equal.
        let left = tone(8000, 0.5, &[(500.0, 10_000.0)]);
        let interleaved: Vec<i16> = left
            .iter()
            .flat_map(|&l| [l.round() as i16, 0])
            .chain(left.iter().flat_map(|&l| [l.round() as i16; 2]))
            .collect();
        let bytes = wav_bytes(8000, 2, 16, SampleFormat::Int, &interleaved);
        let out = decode_wav("stereo.wav", &bytes, SampleRate::Narrowband).unwrap();
        assert_eq!(out.len(), 8000);
        let half = amplitude(&out[..4000], 500.0, 8000.0);
        let full = amplitude(&out[4000..], 500.0, 8000.0);
        assert!((half - 5000.0).abs() < 5.0, "{half}");
        assert!((full - 10_000.0).abs() < 5.0, "{full}");
    }

    #[test]
    fn other_sample_formats_decode_to_the_same_level() {
        let x = tone(44_100, 0.5, &[(800.0, 0.25)]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "8-bit",
                wav_bytes(
                    44_100,
                    1,
                    8,
                    SampleFormat::Int,
                    &x.iter()
                        .map(|v| (v * 128.0).round() as i8)
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "24-bit",
                wav_bytes(
                    44_100,
                    1,
                    24,
                    SampleFormat::Int,
                    &x.iter()
                        .map(|v| (v * 8_388_608.0).round() as i32)
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "float",
                wav_bytes(
                    44_100,
                    1,
                    32,
                    SampleFormat::Float,
                    &x.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                ),
            ),
        ];
        for (label, bytes) in cases {
            let out = decode_wav(label, &bytes, SampleRate::Narrowband).unwrap();
            assert_eq!(out.len(), 4000, "{label}");
            let level = amplitude(&out[400..3600], 800.0, 8000.0) / (0.25 * 32768.0);
            assert!(db(level).abs() < 0.1, "{label}: {} dB", db(level));
        }
    }

    #[test]
    fn the_internal_format_is_copied_exactly_and_upsampled_for_wideband() {
        let samples: Vec<i16> = (0..800).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
        let bytes = wav_bytes(8000, 1, 16, SampleFormat::Int, &samples);
        assert_eq!(
            decode_wav("x", &bytes, SampleRate::Narrowband).unwrap(),
            samples
        );
        assert_eq!(
            decode_wav("x", &bytes, SampleRate::Wideband).unwrap().len(),
            1600
        );
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        let good = wav_bytes(8000, 1, 16, SampleFormat::Int, &[1i16, 2, 3, 4]);
        let err = |bytes: &[u8]| decode_wav("bad.wav", bytes, SampleRate::Narrowband).unwrap_err();

        assert!(matches!(err(b""), PromptError::NotWav { .. }));
        assert!(matches!(
            err(b"ID3\x03\x00 an mp3 file"),
            PromptError::NotWav { .. }
        ));
        assert!(matches!(
            err(b"RIFF\x10\x00\x00\x00AVI LIST"),
            PromptError::NotWav { .. }
        ));
        assert!(matches!(err(&good[..20]), PromptError::Malformed { .. }));
        // Header without any data.
        let empty = wav_bytes::<i16>(8000, 1, 16, SampleFormat::Int, &[]);
        assert!(matches!(err(&empty), PromptError::Empty { .. }));
        // Data chunk cut after the header: the claimed samples are missing.
        assert!(matches!(err(&good[..44]), PromptError::Empty { .. }));
        // Cut mid-data: what is there is decoded.
        assert_eq!(
            decode_wav("cut.wav", &good[..48], SampleRate::Narrowband).unwrap(),
            vec![1, 2]
        );
        // A-law (format tag 6) is not decoded here.
        let mut alaw = good.clone();
        alaw[20] = 6;
        assert!(matches!(
            err(&alaw),
            PromptError::Unsupported {
                format: UnsupportedFormat::Encoding,
                ..
            }
        ));
        // Rate 0 and absurd rates.
        for rate in [0u32, 100, 1_000_000] {
            let mut bad = good.clone();
            bad[24..28].copy_from_slice(&rate.to_le_bytes());
            bad[28..32].copy_from_slice(&(rate * 2).to_le_bytes());
            let got = err(&bad);
            assert!(
                matches!(
                    got,
                    PromptError::Unsupported {
                        format: UnsupportedFormat::SampleRate(r),
                        ..
                    } if r == rate
                ),
                "{rate}: {got}"
            );
        }
        // The error names the file.
        assert!(err(b"junk").to_string().contains("bad.wav"));
    }

    #[test]
    fn mutated_headers_and_random_bytes_never_panic() {
        let samples: Vec<i16> = (0..64).collect();
        let seeds = [
            wav_bytes(8000, 1, 16, SampleFormat::Int, &samples),
            wav_bytes(44_100, 2, 24, SampleFormat::Int, &[1i32; 64]),
            wav_bytes(16_000, 1, 32, SampleFormat::Float, &[0.5f32; 64]),
        ];
        // A fixed xorshift stream: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..1200 {
            let Some(seed) = seeds.get(round % seeds.len()) else {
                continue;
            };
            let mut bytes = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % 60) as usize % bytes.len();
                bytes[at] = next() as u8;
            }
            let cut = (next() as usize) % (bytes.len() + 1);
            let _ = decode_wav("fuzz", &bytes[..cut], SampleRate::Narrowband);
        }
        for len in 0..200 {
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode_wav("junk", &junk, SampleRate::Narrowband);
        }
    }
}
