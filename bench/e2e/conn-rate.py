# Connection-rate tool for the north-south benchmark (bench/e2e/conn-rate.ts).
#
#   conn-rate.py client HOST PORT WARMUP COUNT DEADLINE_S PAYLOAD
#       COUNT sequential connections (after WARMUP unrecorded ones), each:
#       connect, send PAYLOAD, read it back, close; stops at COUNT or after
#       DEADLINE_S; each connection gives up after 2 s. Prints JSON:
#       {"setup": [us, ...], "done", "fails", "seconds"}; setup is connect()
#       to connected, "done" counts connections whose echo came back intact.
#   conn-rate.py server PORT LIFE_S
#       echo server on every address, one event loop (selectors), exits after LIFE_S.
import json, selectors, socket, sys, time

def client(host, port, warmup, count, deadline, payload):
    end = time.monotonic() + deadline
    setup, done, fails = [], 0, 0
    def one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(2.0)
        try:
            t0 = time.perf_counter_ns()
            s.connect((host, port))
            up = (time.perf_counter_ns() - t0) / 1000
            s.sendall(payload)
            got = b''
            while len(got) < len(payload):
                chunk = s.recv(len(payload) - len(got))
                if not chunk:
                    return None
                got += chunk
            return up if got == payload else None
        except OSError:
            return None
        finally:
            s.close()
    for _ in range(warmup):
        if time.monotonic() >= end:
            break
        one()
    t0 = time.monotonic()
    for _ in range(count):
        if time.monotonic() >= end:
            break
        v = one()
        if v is None:
            fails += 1
        else:
            done += 1
            setup.append(v)
    print(json.dumps({'setup': setup, 'done': done, 'fails': fails, 'seconds': time.monotonic() - t0}))

def server(port, life):
    end = time.monotonic() + life
    sel = selectors.DefaultSelector()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('0.0.0.0', port))
    ls.listen(1024)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=1.0):
            if key.data is None:
                try:
                    c, _ = ls.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, 'conn')
                continue
            c = key.fileobj
            try:
                data = c.recv(4096)
            except OSError:
                data = b''
            if data:
                try:
                    c.send(data)
                except OSError:
                    pass
            else:
                sel.unregister(c)
                c.close()

if __name__ == '__main__':
    if sys.argv[1] == 'client':
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7].encode())
    else:
        server(int(sys.argv[2]), float(sys.argv[3]))
