//! Audio as RTP in a pcap file, for SIPp's `play_pcap_audio` (a SIPp phone that sends a
//! test signal of its own, e.g. tests/sipp/phone_answer_tone.xml). SIPp reads Ethernet,
//! IPv4 and UDP frames and sends each UDP payload from its media port to the far end's
//! address at the pace of the capture's timestamps; addresses, ports and checksums in
//! the file are replaced, so placeholders do.

use std::path::Path;

use sentralbord::media::codec::g711;

/// Samples per packet: 20 ms at 8 kHz.
pub const PACKET_SAMPLES: usize = 160;
/// PCMU's static payload type (RFC 3551).
const PCMU: u8 = 0;
/// Ethernet (pcap `LINKTYPE_ETHERNET`).
const LINKTYPE_ETHERNET: u32 = 1;
const ETHERNET_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
const RTP_HEADER: usize = 12;

/// Writes `samples` (8 kHz) as one PCMU RTP stream of 20 ms packets (one SSRC, sequence
/// numbers and timestamps without gaps); a last partial packet is left out.
pub fn write_pcmu_pcap(path: &Path, samples: &[i16]) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone 0, accuracy 0, snaplen, link type.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65_535, LINKTYPE_ETHERNET] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    let mut payload = [0u8; PACKET_SAMPLES];
    for (i, frame) in samples.chunks_exact(PACKET_SAMPLES).enumerate() {
        g711::encode_ulaw(frame, &mut payload);
        let seq = i as u16;
        let timestamp = (i * PACKET_SAMPLES) as u32;
        let micros = (i as u64) * 20_000;
        let rtp_len = RTP_HEADER + payload.len();
        let udp_len = UDP_HEADER + rtp_len;
        let ip_len = IPV4_HEADER + udp_len;
        let frame_len = ETHERNET_HEADER + ip_len;
        // Record header: seconds, microseconds, captured and original length.
        out.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        // Ethernet: two made-up MACs, IPv4.
        out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        // IPv4: 127.0.0.1 to 127.0.0.1, UDP, no options (SIPp rewrites the addresses).
        let mut ip = [0u8; IPV4_HEADER];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let checksum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        out.extend_from_slice(&ip);
        // UDP: placeholder ports, no checksum (SIPp sets ports and computes one).
        out.extend_from_slice(&6000u16.to_be_bytes());
        out.extend_from_slice(&6000u16.to_be_bytes());
        out.extend_from_slice(&(udp_len as u16).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        // RTP: version 2, marker on the first packet, PCMU.
        out.push(0x80);
        out.push(if i == 0 { 0x80 | PCMU } else { PCMU });
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&0x5345_4e54u32.to_be_bytes());
        out.extend_from_slice(&payload);
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write the pcap {}: {e}", path.display()));
}

/// The IPv4 header checksum (RFC 791): ones' complement of the ones' complement sum.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
