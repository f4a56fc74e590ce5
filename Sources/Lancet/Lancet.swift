// The umbrella module: `import Lancet` gives scripts and out-of-tree passes every public layer.
@_exported import LancetIO
@_exported import LancetTensor
