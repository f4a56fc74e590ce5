// The umbrella module: `import Lancet` gives scripts and out-of-tree passes every public layer.
@_exported import LancetData
@_exported import LancetIO
@_exported import LancetIR
@_exported import LancetRuntime
@_exported import LancetSurgery
@_exported import LancetTensor
