#!/usr/bin/env python3
# The known answers of slowpath/src/ldp/wire/tests.rs and the ldp_pdu fuzz seeds, built by
# an implementation independent of the Rust code: scapy's LDP layer (scapy.contrib.ldp,
# PyPI scapy 2.8). `python3 kat_gen.py [NAME]` prints NAME HEX lines.
#
# Where scapy's layer cannot express a PDU, the bytes are laid out by hand here from the
# RFC 5036 figures, and the line's name ends in `_hand`:
# - scapy writes a Prefix FEC element's prefix as 4 octets whatever its length (RFC 5036
#   §3.4.1 says ceil(len/8) octets), so only /32 prefixes come from scapy;
# - it has no Wildcard FEC element, no IPv4 Transport Address or Configuration Sequence
#   Number TLVs in Hello, and its Label Abort Request carries the Label Request Message ID
#   without its TLV header;
# - unknown messages and TLVs (U bit tests) are not in it.
#
# Cross-check: every PDU, sent in a TCP segment from port 646, was decoded by tshark 4.0.17
# to the same fields. tshark flags as malformed only bad_tlv_len_hand (meant to be), the
# experimental message of unknown_msg_hand, and PDUs whose last TLV is a FEC TLV (scapy's
# `request` as well as withdraw_wildcard_hand: a quirk of its FEC dissector).
import struct, sys
from scapy.contrib.ldp import (LDP, LDPHello, LDPInit, LDPKeepAlive, LDPNotification,
    LDPAddress, LDPAddressWM, LDPLabelMM, LDPLabelReqM, LDPLabelWM, LDPLabelRelM)
from scapy.packet import Raw

A = '10.0.0.1'   # LSR A (lower transport address)
B = '10.0.0.2'   # LSR B
out = {}
out['hello'] = bytes(LDP(id=A, space=0) / LDPHello(id=1, params=[15, 0, 0]))
out['init'] = bytes(LDP(id=B, space=0) / LDPInit(id=2, params=[180, 0, 0, 0, 4096, A, 0]))
out['keepalive'] = bytes(LDP(id=A, space=0) / LDPKeepAlive(id=3))
# Shutdown (0x0A), E = 1, about no message.
out['notif_shutdown'] = bytes(LDP(id=B, space=0) / LDPNotification(id=4, status=[1, 0, 0x0A, 0, 0]))
# Unknown Message Type (0x04), E = 0, about message 77 of type 0x3f00.
out['notif_unknown_msg'] = bytes(LDP(id=B, space=0) / LDPNotification(id=5, status=[0, 0, 0x04, 77, 0x3f00]))
out['address'] = bytes(LDP(id=A, space=0) / LDPAddress(id=6, address=['10.0.12.1', '198.18.0.1']))
out['address_withdraw'] = bytes(LDP(id=A, space=0) / LDPAddressWM(id=7, address=['198.18.0.1']))
out['mapping'] = bytes(LDP(id=B, space=0) / LDPLabelMM(id=8, fec=[('198.18.7.1', 32)], label=16))
out['mapping_two_fecs'] = bytes(LDP(id=B, space=0) / LDPLabelMM(id=9, fec=[('198.18.7.1', 32), ('198.18.7.2', 32)], label=1048575))
out['request'] = bytes(LDP(id=A, space=0) / LDPLabelReqM(id=10, fec=[('198.18.7.1', 32)]))
out['withdraw'] = bytes(LDP(id=B, space=0) / LDPLabelWM(id=11, fec=[('198.18.7.1', 32)], label=16))
out['release'] = bytes(LDP(id=A, space=0) / LDPLabelRelM(id=12, fec=[('198.18.7.1', 32)], label=16))
# Several messages in one PDU, as a session sends them after Initialization.
out['stacked'] = bytes(LDP(id=A, space=0) / LDPKeepAlive(id=13) / LDPAddress(id=14, address=['10.0.12.1'])
                       / LDPLabelMM(id=15, fec=[('198.18.7.1', 32)], label=17))

# Hand-built from RFC 5036 §3 (see the header).
def tlv(t, v, u=0, f=0): return struct.pack('!HH', (u << 15) | (f << 14) | t, len(v)) + v
def msg(t, i, body, u=0): return struct.pack('!HHI', (u << 15) | t, 4 + len(body), i) + body
def pdu(lsr, space, msgs):
    m = b''.join(msgs)
    return struct.pack('!HH', 1, 6 + len(m)) + bytes(map(int, lsr.split('.'))) + struct.pack('!H', space) + m
def ip(a): return bytes(map(int, a.split('.')))
def prefix(a, l): return struct.pack('!BHB', 2, 1, l) + ip(a)[:(l + 7) // 8]
common_hello = tlv(0x0400, struct.pack('!HBB', 15, 0, 0))
out['hello_transport_hand'] = pdu(A, 0, [msg(0x0100, 20, common_hello + tlv(0x0401, ip('10.0.0.1')) + tlv(0x0402, struct.pack('!I', 3)))])
out['mapping_prefix24_hand'] = pdu(B, 0, [msg(0x0400, 21, tlv(0x0100, prefix('198.18.7.0', 24)) + tlv(0x0200, struct.pack('!I', 299)))])
out['mapping_prefix0_hand'] = pdu(B, 0, [msg(0x0400, 22, tlv(0x0100, prefix('0.0.0.0', 0)) + tlv(0x0200, struct.pack('!I', 300)))])
out['withdraw_wildcard_hand'] = pdu(B, 0, [msg(0x0402, 23, tlv(0x0100, b'\x01'))])
out['abort_hand'] = pdu(A, 0, [msg(0x0404, 24, tlv(0x0100, prefix('198.18.7.1', 32)) + tlv(0x0600, struct.pack('!I', 10)))])
# Vendor-private TLV 0x3e01 (Vendor ID 9, then 0xaabb; RFC 5036 §3.6.1.1), unknown here.
VENDOR = struct.pack('!I', 9) + b'\xaa\xbb'
# Unknown TLV with U = 1, F = 1 in a mapping: ignored, the mapping stands.
out['mapping_unknown_tlv_u1_hand'] = pdu(B, 0, [msg(0x0400, 25, tlv(0x0100, prefix('198.18.7.1', 32)) + tlv(0x0200, struct.pack('!I', 16)) + tlv(0x3e01, VENDOR, u=1, f=1))])
# Unknown TLV with U = 0: the mapping is rejected (Unknown TLV), the KeepAlive after it stands.
out['mapping_unknown_tlv_u0_hand'] = pdu(B, 0, [msg(0x0400, 26, tlv(0x0100, prefix('198.18.7.1', 32)) + tlv(0x0200, struct.pack('!I', 16)) + tlv(0x3e01, VENDOR)), msg(0x0201, 27, b'')])
# Experimental message 0x3f00 (Experiment ID 1 first, RFC 5036 §3.6.2.1), unknown here,
# with U = 1 (ignored) and with U = 0 (Unknown Message Type).
out['unknown_msg_hand'] = pdu(A, 0, [msg(0x3f00, 28, b'\x00\x00\x00\x01\x01\x02', u=1), msg(0x3f00, 29, b'\x00\x00\x00\x01'), msg(0x0201, 30, b'')])
# A TLV running past its message: Bad TLV Length, fatal.
out['bad_tlv_len_hand'] = pdu(A, 0, [msg(0x0300, 31, struct.pack('!HH', 0x0101, 40) + struct.pack('!H', 1) + ip('10.0.0.1'))])

which = sys.argv[1] if len(sys.argv) > 1 else None
for k, v in out.items():
    if which is None or k == which:
        print(k, v.hex())
