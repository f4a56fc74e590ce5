import CZlib

/// Decompresses gzip (and zlib) data with zlib.
public enum Gzip {
    /// Whether `bytes` start with the gzip magic number.
    public static func isCompressed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// The decompressed bytes of a gzip stream (concatenated members are read in turn).
    /// Throws `DataError.corrupt` naming `path` when the stream is damaged or truncated.
    public static func decompress(_ input: UnsafeRawBufferPointer, path: String) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(input.count * 4)
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError.corrupt(path: path, reason: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        var consumed = 0
        while true {
            let remaining = input.count - consumed
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self) + consumed)
            stream.avail_in = UInt32(min(remaining, Int(UInt32.max)))
            let before = Int(stream.avail_in)
            var status: Int32 = Z_OK
            repeat {
                status = chunk.withUnsafeMutableBufferPointer { buf -> Int32 in
                    stream.next_out = buf.baseAddress
                    stream.avail_out = UInt32(buf.count)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    out.append(contentsOf: buf[0..<(buf.count - Int(stream.avail_out))])
                    return s
                }
            } while status == Z_OK && (stream.avail_in > 0 || stream.avail_out == 0)
            consumed += before - Int(stream.avail_in)
            if status == Z_STREAM_END {
                if consumed >= input.count { return out }
                guard inflateReset(&stream) == Z_OK else { throw DataError.corrupt(path: path, reason: "zlib reset failed") }
                continue
            }
            if status == Z_BUF_ERROR || (status == Z_OK && consumed >= input.count) {
                throw DataError.corrupt(path: path, reason: "the gzip stream is truncated")
            }
            throw DataError.corrupt(path: path, reason: "the gzip stream is damaged (zlib status \(status))")
        }
    }
}
