import Foundation

/// The terminal in raw mode on the alternate screen, restored on exit.
final class Terminal {
    private var original = termios()
    private var active = false

    func enter() {
        guard tcgetattr(STDIN_FILENO, &original) == 0 else { return }
        var raw = original
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        raw.c_oflag &= ~tcflag_t(OPOST)
        raw.c_cflag |= tcflag_t(CS8)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
        active = true
        write("\u{1B}[?1049h\u{1B}[?25h")
    }

    func leave() {
        guard active else { return }
        write("\u{1B}[?1049l")
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
        active = false
    }

    /// Rows and columns; 24×80 when the size cannot be read.
    var size: (rows: Int, columns: Int) {
        var window = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0, window.ws_row > 0, window.ws_col > 0 else {
            return (24, 80)
        }
        return (Int(window.ws_row), Int(window.ws_col))
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes {
                Foundation.write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset)
            }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Bytes typed within `milliseconds`, or none.
    func read(milliseconds: Int32) -> [UInt8] {
        var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, milliseconds) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = Foundation.read(STDIN_FILENO, &buffer, buffer.count)
        return count > 0 ? Array(buffer[0..<count]) : []
    }
}

/// A key press decoded from the terminal's bytes.
enum Key: Equatable {
    case character(Character)
    case enter, backspace, pageUp, pageDown, up, down, escape, interrupt
    /// Alt+digit: switch to the n-th group.
    case altDigit(Int)

    /// Decodes a burst of input bytes (a paste may hold many keys).
    static func decode(_ bytes: [UInt8]) -> [Key] {
        var keys: [Key] = []
        var index = 0
        var text: [UInt8] = []
        func flushText() {
            if !text.isEmpty {
                keys += String(decoding: text, as: UTF8.self).map(Key.character)
                text.removeAll()
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x0D, 0x0A:
                flushText()
                keys.append(.enter)
                index += 1
            case 0x7F, 0x08:
                flushText()
                keys.append(.backspace)
                index += 1
            case 0x03, 0x04:
                flushText()
                keys.append(.interrupt)
                index += 1
            case 0x1B:
                flushText()
                let rest = Array(bytes[(index + 1)...].prefix(3))
                if rest.starts(with: Array("[5~".utf8)) {
                    keys.append(.pageUp)
                    index += 4
                } else if rest.starts(with: Array("[6~".utf8)) {
                    keys.append(.pageDown)
                    index += 4
                } else if rest.starts(with: Array("[A".utf8)) {
                    keys.append(.up)
                    index += 3
                } else if rest.starts(with: Array("[B".utf8)) {
                    keys.append(.down)
                    index += 3
                } else if let first = rest.first, (0x31...0x39).contains(first) {
                    keys.append(.altDigit(Int(first - 0x30)))
                    index += 2
                } else if rest.first == UInt8(ascii: "[") || rest.first == UInt8(ascii: "O") {
                    index += 3
                }  // other escapes: ignore
                else {
                    keys.append(.escape)
                    index += 1
                }
            case 0x00..<0x20:
                flushText()
                index += 1
            default:
                text.append(byte)
                index += 1
            }
        }
        flushText()
        return keys
    }
}
