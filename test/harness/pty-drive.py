#!/usr/bin/env python3
"""Drives a program through a real pseudo-terminal, as a person at a keyboard would.

usage: pty-drive.py STEPS_JSON -- program args...
STEPS_JSON is a list of [regex, text]: wait until the output so far matches regex, then type
text (or, for text "@resize ROWS COLS", resize the terminal as a window manager would; for
"@paste TEXT", write TEXT in one go, as a terminal delivers a paste). After the last step the output is read to the end. Everything the program wrote to its
terminal goes to stdout; the exit status is the program's. A step that does not match within
20 s ends the run with status 124.
"""
import fcntl, json, os, pty, re, select, signal, struct, sys, termios, time

def main():
    sep = sys.argv.index('--')
    steps = json.loads(sys.argv[1])
    argv = sys.argv[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    # a terminal of 80x24, as a fresh xterm would be (pty.fork leaves it 0x0)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))
    out = b''
    def read(timeout):
        nonlocal out
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        out += data
        return True
    for pattern, text in steps:
        deadline = time.time() + 20
        while not re.search(pattern.encode(), out):
            if time.time() > deadline or not read(0.2):
                sys.stdout.buffer.write(out)
                sys.stderr.write('pty-drive: no match for %r\n' % pattern)
                os.kill(pid, 9)
                sys.exit(124)
        if text.startswith('@resize '):
            rows, cols = (int(v) for v in text.split()[1:3])
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
            os.kill(pid, signal.SIGWINCH)
            time.sleep(0.2)
            continue
        if text.startswith('@paste '):
            os.write(fd, text[len('@paste '):].encode())
            continue
        # typed slowly enough for line editing to happen on the far side, one write per key
        for ch in text.encode():
            os.write(fd, bytes([ch]))
            time.sleep(0.005)
    deadline = time.time() + 20
    while time.time() < deadline and read(0.5):
        pass
    sys.stdout.buffer.write(out)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))

main()
