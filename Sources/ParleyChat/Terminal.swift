import Foundation

/// The terminal in raw mode on the alternate screen with bracketed paste on,
/// all restored by `leave`.
public final class Terminal: @unchecked Sendable {
    private var original = termios()
    private var active = false

    public init() {}

    public func enter() {
        guard tcgetattr(STDIN_FILENO, &original) == 0 else { return }
        var raw = original
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        raw.c_oflag &= ~tcflag_t(OPOST)
        raw.c_cflag |= tcflag_t(CS8)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
        active = true
        // Alternate screen, cursor shown, bracketed paste (ESC[200~ … ESC[201~ around pasted text).
        write("\u{1B}[?1049h\u{1B}[?25h\u{1B}[?2004h")
    }

    public func leave() {
        guard active else { return }
        write("\u{1B}[?2004l\u{1B}[?1049l")
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
        active = false
    }

    /// Rows and columns; 24×80 when the size cannot be read.
    public var size: (rows: Int, columns: Int) {
        var window = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0, window.ws_row > 0, window.ws_col > 0 else {
            return (24, 80)
        }
        return (Int(window.ws_row), Int(window.ws_col))
    }

    public func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Foundation.write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset)
            }
            if written < 0, errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }

    /// What one wait for input brought.
    public enum Input: Sendable {
        case bytes([UInt8])
        /// Nothing arrived within the wait.
        case quiet
        /// Standard input is gone (the terminal closed).
        case closed
    }

    /// Bytes typed within `milliseconds`.
    public static func read(milliseconds: Int32) -> Input {
        var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 { return errno == EINTR ? .quiet : .closed }
        guard ready > 0 else { return .quiet }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Foundation.read(STDIN_FILENO, &buffer, buffer.count)
        if count < 0, errno == EINTR || errno == EAGAIN { return .quiet }
        return count > 0 ? .bytes(Array(buffer[0..<count])) : .closed
    }
}
