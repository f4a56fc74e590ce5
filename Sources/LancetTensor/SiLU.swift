#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// SiLU and the fused SwiGLU gate of Llama's MLP, forward and backward, element by element.
//
//   σ(x) = 1/(1 + e⁻ˣ)       silu(x) = x·σ(x)       silu'(x) = σ(x)·(1 + x·(1 − σ(x)))
//   swiglu(g, u) = silu(g)·u   ∂/∂g = u·silu'(g)      ∂/∂u = silu(g)
//
// Every output may alias an input element for element (each lane is read before it is written).

/// Applies `op` to 16-lane blocks of `count` elements, padding the tail with zeros.
@inline(__always) private func map16(
    count: Int, _ op: (_ offset: Int, _ lanes: Int) -> Void
) {
    var j = 0
    while j + 16 <= count { op(j, 16); j += 16 }
    if j < count { op(j, count - j) }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>, _ lanes: Int) -> SIMD16<Float> {
    lanes == 16 ? load16(p) : loadPartial16(p, lanes)
}

@inline(__always) private func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 16 { store16(v, p) } else { storePartial16(v, p, lanes) }
}

/// out = x·σ(x). Shapes: x, out [count].
public func silu(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
    map16(count: count) { j, lanes in
        let v = load(x + j, lanes)
        store(v * sigmoid16(v), out + j, lanes)
    }
}

/// dx = dy·σ(x)·(1 + x·(1 − σ(x))). Shapes: x, dy, dx [count].
public func siluBackward(
    _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, count: Int, dx: UnsafeMutablePointer<Float>
) {
    map16(count: count) { j, lanes in
        let v = load(x + j, lanes)
        let s = sigmoid16(v)
        store(load(dy + j, lanes) * s * (1 + v * (1 - s)), dx + j, lanes)
    }
}

/// out = silu(gate)·up, the SwiGLU gate. Shapes: gate, up, out [count].
public func swiglu(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>
) {
    map16(count: count) { j, lanes in
        let g = load(gate + j, lanes)
        store(g * sigmoid16(g) * load(up + j, lanes), out + j, lanes)
    }
}

/// Backward of `swiglu`: dGate = dOut·up·silu'(gate), dUp = dOut·silu(gate) (both overwritten).
/// Shapes: gate, up, dOut, dGate, dUp [count].
public func swigluBackward(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, dOut: UnsafePointer<Float>, count: Int,
    dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>
) {
    map16(count: count) { j, lanes in
        let g = load(gate + j, lanes), u = load(up + j, lanes), d = load(dOut + j, lanes)
        let s = sigmoid16(g)
        let dg = d * u * s * (1 + g * (1 - s))
        let du = d * g * s
        store(dg, dGate + j, lanes)
        store(du, dUp + j, lanes)
    }
}

/// Naive reference for `silu`.
func siluReference(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
    for j in 0..<count { out[j] = x[j] / (1 + expf(-x[j])) }
}

/// Naive reference for `siluBackward`.
func siluBackwardReference(
    _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, count: Int, dx: UnsafeMutablePointer<Float>
) {
    for j in 0..<count {
        let s = 1 / (1 + expf(-x[j]))
        dx[j] = dy[j] * s * (1 + x[j] * (1 - s))
    }
}

/// Naive reference for `swiglu`.
func swigluReference(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>
) {
    for j in 0..<count { out[j] = gate[j] / (1 + expf(-gate[j])) * up[j] }
}
