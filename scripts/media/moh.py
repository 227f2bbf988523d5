#!/usr/bin/env python3
"""Synthesises the built-in music on hold: an original, calm piece in D major.

Output: 8 kHz mono 16-bit WAV, 16 bars at 84 bpm (about 46 s). Every note is mixed into a
circular buffer, so tails that ring past the last bar wrap around to the start and the
file loops without a click. Only the standard library is used and the random choices come
from a fixed seed, so the same Python gives the same bytes.

Usage: moh.py OUTPUT.wav
"""

import math
import random
import struct
import sys
import wave

RATE = 8000
BPM = 84
BEATS_PER_BAR = 4
BEAT = 60.0 / BPM
BAR = BEAT * BEATS_PER_BAR
SEED = 20240515
# Partials above this are dropped: they would sit close to the 4 kHz Nyquist limit of the
# telephone band and sound harsh after G.711.
MAX_PARTIAL_HZ = 3400.0
PEAK = 0.45 * 32767  # about -7 dBFS: loud enough on a phone, far from clipping in G.711

# Chords as MIDI note numbers (root first), one per bar: I vi IV V / I iii IV Vsus-V, twice.
D, BM, G, A, FSM, ASUS = (
    [50, 62, 66, 69, 73],  # Dmaj7
    [47, 62, 66, 69, 71],  # Bm7 (B, D, F#, A)
    [43, 62, 66, 67, 71],  # Gmaj7 (G, B, D, F#)
    [45, 61, 64, 67, 69],  # A7 (A, C#, E, G)
    [42, 61, 64, 66, 69],  # F#m7
    [45, 62, 64, 69, 71],  # Asus4 with 9
)
PROGRESSION = [D, BM, G, A, D, FSM, G, ASUS] * 2
SCALE = [62, 64, 66, 69, 71, 74, 76, 78, 81]  # D major pentatonic, D4 to A5


def midi_hz(note):
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def add_note(buf, start_s, dur_s, freq, amp, partials, attack_s, release_s, decay_tau=None,
             vibrato=0.0):
    """Mixes one note into the circular buffer `buf` (wrapping at its end)."""
    n = len(buf)
    start = int(round(start_s * RATE))
    length = int(round((dur_s + release_s) * RATE))
    hold = int(round(dur_s * RATE))
    attack = max(1, int(round(attack_s * RATE)))
    release = max(1, int(round(release_s * RATE)))
    parts = [(k, a) for k, a in partials if freq * k < MAX_PARTIAL_HZ]
    phase_step = 2.0 * math.pi * freq / RATE
    for i in range(length):
        if i < attack:
            env = 0.5 - 0.5 * math.cos(math.pi * i / attack)
        else:
            env = 1.0
        if decay_tau is not None:
            env *= math.exp(-(i / RATE) / decay_tau)
        if i >= hold:
            r = (i - hold) / release
            env *= 0.5 + 0.5 * math.cos(math.pi * min(r, 1.0))
        phase = phase_step * i
        if vibrato:
            phase += vibrato * math.sin(2.0 * math.pi * 5.0 * i / RATE)
        s = 0.0
        for k, a in parts:
            s += a * math.sin(k * phase)
        buf[(start + i) % n] += amp * env * s


def render():
    rng = random.Random(SEED)
    bars = len(PROGRESSION)
    n = int(round(bars * BAR * RATE))
    buf = [0.0] * n

    for bar, chord in enumerate(PROGRESSION):
        t0 = bar * BAR
        root, voicing = chord[0], chord[1:]
        # Pad: the four upper chord tones, two slightly detuned sines each (a soft chorus).
        for note in voicing:
            f = midi_hz(note)
            for detune in (-0.6, 0.6):
                add_note(buf, t0, BAR, f + detune, 0.045, [(1, 1.0), (2, 0.12)],
                         attack_s=0.8, release_s=1.2)
        # Bass: the root on beats 1 and 3, with harmonics so it survives a phone's high-pass.
        for beat in (0, 2):
            add_note(buf, t0 + beat * BEAT, 2 * BEAT * 0.9, midi_hz(root + 12), 0.16,
                     [(1, 1.0), (2, 0.6), (3, 0.35), (4, 0.15)],
                     attack_s=0.02, release_s=0.3, decay_tau=1.2)
        # Arpeggio: soft bell-like eighth notes over the chord tones, one octave up.
        tones = [v + 12 for v in voicing]
        pattern = rng.choice([[0, 1, 2, 3, 2, 1, 0, 1], [0, 2, 1, 3, 2, 3, 1, 2],
                              [3, 2, 1, 0, 1, 2, 3, 2], [0, 1, 3, 2, 0, 1, 3, 1]])
        for step, idx in enumerate(pattern):
            add_note(buf, t0 + step * BEAT / 2, BEAT * 0.4, midi_hz(tones[idx]), 0.07,
                     [(1, 1.0), (2, 0.25), (3, 0.08)],
                     attack_s=0.006, release_s=0.5, decay_tau=0.45)

    # Melody in the second half: a seeded walk on the pentatonic scale, quarter and half
    # notes, landing on a chord tone at each bar.
    pos = 4
    for bar in range(bars // 2, bars):
        t = bar * BAR
        beat = 0.0
        chord_pcs = {p % 12 for p in PROGRESSION[bar]}
        while beat < BEATS_PER_BAR:
            length = rng.choice([1.0, 1.0, 2.0]) if beat <= 2.0 else 1.0
            length = min(length, BEATS_PER_BAR - beat)
            if beat == 0.0:
                candidates = [i for i, p in enumerate(SCALE) if p % 12 in chord_pcs]
                pos = min(candidates, key=lambda i: (abs(i - pos), i))
            else:
                pos = max(0, min(len(SCALE) - 1, pos + rng.choice([-2, -1, -1, 1, 1, 2])))
            add_note(buf, t + beat * BEAT, length * BEAT * 0.85, midi_hz(SCALE[pos]), 0.10,
                     [(1, 1.0), (3, 0.12)], attack_s=0.05, release_s=0.35, vibrato=0.01)
            beat += length
    return buf


def write_wav(path, buf):
    peak = max(abs(s) for s in buf) or 1.0
    scale = PEAK / peak
    frames = b"".join(struct.pack("<h", int(round(s * scale))) for s in buf)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write_wav(sys.argv[1], render())


if __name__ == "__main__":
    main()
