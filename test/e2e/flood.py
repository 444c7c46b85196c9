# Writes malformed frames into an interface through an AF_PACKET socket
# (run inside a pod namespace on its eth0): every kind the datapath must
# drop with a reason and survive. Usage: flood.py IFACE SRC_MAC DST_MAC REPEAT
import socket, struct, sys

ifname, src, dst, repeat = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), bytes.fromhex(sys.argv[3].replace(':', '')), int(sys.argv[4])
eth = lambda et: dst + src + struct.pack('!H', et)
ip4 = lambda ihl, tot: struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, tot, 1, 0, 64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
frames = [
    dst + src[:4],                                  # truncated Ethernet header (10 bytes)
    eth(0x0800) + ip4(3, 20) + b'\0' * 20,          # IHL below 5
    eth(0x0800) + ip4(5, 9999) + b'\0' * 20,        # total length past the frame
    eth(0x0800) + ip4(15, 60)[:10],                 # IPv4 header cut short
    eth(0x0800) + ip4(15, 40) + b'\0' * 20,         # IHL*4 past total length
    eth(0x86dd) + b'\x60' + b'\0' * 19,             # IPv6 header cut short
    eth(0x86dd) + struct.pack('!IHBB', 0x60000000, 4000, 17, 64) + b'\0' * 32 + b'\0' * 8,  # payload length past frame
    eth(0x86dd) + struct.pack('!IHBB', 0x60000000, 4, 0, 64) + b'\0' * 32 + b'\x11\x05\0\0',  # hop-by-hop runs past packet
    eth(0x86dd) + struct.pack('!IHBB', 0x40000000, 8, 17, 64) + b'\0' * 32 + b'\0' * 8,  # version 4 in an IPv6 frame
    eth(0x0806) + b'\0\x01\x08\x00\x06',            # ARP cut short
    eth(0x88b5) + b'tapestry' * 4,                  # unknown L3
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
sent = 0
for _ in range(repeat):
    for f in frames:
        try:
            s.send(f)
            sent += 1
        except OSError:
            pass
print(sent)
