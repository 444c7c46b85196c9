# Bounded UDP flood for the prefilter benchmark (bench/e2e/udp-flood.ts):
# sends SIZE-byte datagrams from SRC (an address of this namespace) to
# DST:PORT as fast as one core allows, until SECONDS have passed or COUNT
# datagrams went out, then prints {"sent", "errors", "seconds"} as JSON.
# Usage: udp-flood.py SRC DST PORT SECONDS COUNT SIZE
import json, socket, sys, time

src, dst, port, seconds, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
payload = b'x' * size
addr = (dst, port)
send = s.sendto
sent = errors = 0
t0 = time.monotonic()
end = t0 + seconds
while sent + errors < count:
    # The clock is read once per 256 datagrams; the count bounds the loop as well.
    for _ in range(256):
        try:
            send(payload, addr)
            sent += 1
        except OSError:
            errors += 1
    if time.monotonic() >= end:
        break
print(json.dumps({'sent': sent, 'errors': errors, 'seconds': time.monotonic() - t0}))
