import Foundation

/// The symbols an ELF shared library imports: the undefined, non-weak entries of its dynamic symbol table.
///
/// `PluginLoader` uses them to prove that every Lancet symbol a plugin references is provided by the host.
/// A plugin links against the `Lancet` dynamic library product only to have those references left
/// undefined; at load time each one binds to the first definition in the process's global scope (the host
/// executable, which exports its copy of Lancet) and only failing that to the plugin's own `libLancet.so`.
/// A reference that lands there would silently use a second copy of Lancet's types, so it is an error.
enum ELFImports {
    /// The imported symbol names of the ELF64 little-endian file at `path`, or nil when it is not one
    /// (or has no dynamic symbol table).
    static func undefinedSymbols(inFileAt path: String) -> [String]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return data.withUnsafeBytes { undefinedSymbols(in: $0) }
    }

    /// The imported symbol names of an ELF64 little-endian image in memory.
    static func undefinedSymbols(in bytes: UnsafeRawBufferPointer) -> [String]? {
        func read<T: FixedWidthInteger>(_ offset: Int, as _: T.Type) -> T? {
            guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else { return nil }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1).
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46,
              bytes[4] == 2, bytes[5] == 1,
              let sectionTable = read(0x28, as: UInt64.self), let entrySize = read(0x3a, as: UInt16.self),
              let sectionCount = read(0x3c, as: UInt16.self), entrySize >= 64 else { return nil }
        struct Section { var type: UInt32, offset: Int, size: Int, link: Int, entrySize: Int }
        func section(_ index: Int) -> Section? {
            let base = Int(sectionTable) + index * Int(entrySize)
            guard let type = read(base + 4, as: UInt32.self), let offset = read(base + 24, as: UInt64.self),
                  let size = read(base + 32, as: UInt64.self), let link = read(base + 40, as: UInt32.self),
                  let entry = read(base + 56, as: UInt64.self), offset <= UInt64(bytes.count), size <= UInt64(bytes.count) else { return nil }
            return Section(type: type, offset: Int(offset), size: Int(size), link: Int(link), entrySize: Int(entry))
        }
        let dynamicSymbolTable: UInt32 = 11
        guard let symbols = (0..<Int(sectionCount)).lazy.compactMap(section).first(where: { $0.type == dynamicSymbolTable }),
              symbols.entrySize >= 24, symbols.link < Int(sectionCount), let strings = section(symbols.link) else { return nil }
        var names: [String] = []
        for index in 1..<max(1, symbols.size / symbols.entrySize) {
            let entry = symbols.offset + index * symbols.entrySize
            guard let nameOffset = read(entry, as: UInt32.self), let info = read(entry + 4, as: UInt8.self),
                  let sectionIndex = read(entry + 6, as: UInt16.self) else { return nil }
            let globalBinding: UInt8 = 1
            guard sectionIndex == 0, info >> 4 == globalBinding, nameOffset != 0 else { continue }
            let start = strings.offset + Int(nameOffset)
            guard start < min(bytes.count, strings.offset + strings.size) else { return nil }
            let end = bytes[start...].firstIndex(of: 0) ?? bytes.count
            names.append(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
        }
        return names
    }
}
