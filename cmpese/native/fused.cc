// The units' rescale as native MXNet 1.9.1 CPU operators (an operator library for
// mx.library.load; cmpese/native/__init__.py builds and loads it). All kernels live here.
//
//   scale(x, s)              y = x * s                 (CMPE-SE eq. 4, the plain rescale)
//   scale_add(x, s, r)       y = x * s + r             (rescale, then the identity flow)
//   scale_add_relu(x, s, r)  y = max(x * s + r, 0)     (the same, post-activation blocks)
//
// x and r are (N, C, ...) -- (N, C, H, W) in the units -- and s is (N, C) or (N, C, 1, 1):
// one gate per (n, c) plane. float32 and float64, dense, CPU. Each kernel is one pass over
// the planes, parallel over them with OpenMP; the backward of each is one pass too:
//   dx = g' * s,   dr = g',   ds[n, c] = sum over the plane of g' * x,
// with g' the output gradient g, masked by y > 0 for the ReLU variant.
//
// Memory traffic, in passes over a tensor of the feature map's size (the s and ds vectors are
// N*C values, nothing next to a map): the floor of an operator is one pass per tensor it
// must read or write, and every kernel here sits on it. Not counted here and not avoidable
// from a library op: MXNet 1.9.1 copies every input held in oneDNN's blocked layout to plain
// NCHW before it calls the library (one read and one write each; c_api.cc,
// CustomFComputeDispatcher), and the outputs are plain NCHW.
//
// The products and sums are rounded exactly as the stock operators round them
// (broadcast_mul, then elemwise_add, then relu; built with -ffp-contract=off, so no fused
// multiply-add), so forward values are bit-identical to the stock graph; ds is a sum in
// another order, equal to rounding.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "mxnet/lib_api.h"

using mxnet::ext::MXReturnValue;
using mxnet::ext::MXTensor;
using mxnet::ext::OpResource;
using mxnet::ext::MX_FAIL;
using mxnet::ext::MX_SUCCESS;

namespace {

typedef std::unordered_map<std::string, std::string> Attrs;

// Below this many elements a kernel runs on the calling thread: waking the OpenMP team
// costs a few microseconds, more than a pass over 32k values in cache.
const int64_t kParallelMin = 1 << 15;

// ------------------------------------------------------------------------------ kernels
// `planes` = N*C planes of `len` = H*W contiguous values each; s holds one value per plane.

// y = x * s (+ r) (then max(., 0)).
// Traffic: reads x (and r), writes y -- 2 passes (3 with r), the floor. The stock graph
// (ops.scale 'dot' + elemwise_add + relu) makes 9 for scale_add_relu: the spread s map
// written (1), x * spread (3), + r (3), relu (2).
template <typename T, bool kAdd, bool kRelu>
void forward_kernel(const T* x, const T* s, const T* r, T* y, int64_t planes, int64_t len) {
#pragma omp parallel for schedule(static) if (planes * len >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const T sp = s[p];
    const T* xp = x + p * len;
    const T* rp = kAdd ? r + p * len : nullptr;
    T* yp = y + p * len;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      T v = xp[i] * sp;
      if (kAdd) v = v + rp[i];
      if (kRelu) v = v > T(0) ? v : T(0);
      yp[i] = v;
    }
  }
}

// dx = g' * s, dr = g', ds = sum(g' * x) per plane, g' = g (masked by y > 0 with kRelu).
// Traffic: reads g and x (and y for the mask), writes dx (and dr) -- 3 passes (4 with r,
// 5 with r and the mask), the floor for an operator that must hand MXNet dr as a tensor of
// its own. ds is summed while the plane is in cache, so it costs no pass. The stock graph
// makes about 13: relu backward (3), add backward (3), dx = g * spread (3), the product
// g * x written (3) and read again (1) by the dot that sums it.
template <typename T, bool kAdd, bool kRelu>
void backward_kernel(const T* g, const T* x, const T* s, const T* y,
                     T* dx, T* ds, T* dr, int64_t planes, int64_t len) {
#pragma omp parallel for schedule(static) if (planes * len >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const T sp = s[p];
    const int64_t o = p * len;
    T acc = T(0);
#pragma omp simd reduction(+:acc)
    for (int64_t i = 0; i < len; ++i) {
      T gi = g[o + i];
      if (kRelu) gi = y[o + i] > T(0) ? gi : T(0);
      dx[o + i] = gi * sp;
      if (kAdd) dr[o + i] = gi;
      acc += gi * x[o + i];
    }
    ds[p] = acc;
  }
}

// ------------------------------------------------------------------------------ checks
template <typename T>
const T* at(const MXTensor& t) { return static_cast<const T*>(t.data_ptr); }
template <typename T>
T* at(MXTensor& t) { return static_cast<T*>(t.data_ptr); }

const char* const kNames[2][2] = {{"scale", "scale_relu"}, {"scale_add", "scale_add_relu"}};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// s fits x: (N, C) or (N, C, 1, ..., 1) with x's rank.
template <typename Shape>
bool gate_fits(const Shape& x, const Shape& s) {
  if (s.size() != 2 && s.size() != x.size()) return false;
  if (s[0] != x[0] || s[1] != x[1]) return false;
  for (size_t i = 2; i < s.size(); ++i)
    if (s[i] != 1) return false;
  return true;
}

// The forward inputs x, s (, r) as the kernels need them; false (with a message) otherwise.
bool check_inputs(const char* name, bool add, const MXTensor& x, const MXTensor& s,
                  const MXTensor* r, int64_t* planes, int64_t* len) {
  if (x.shape.size() < 2) {
    MX_ERROR_MSG << name << ": x must be (N, C, ...), got " << shape_text(x.shape);
    return false;
  }
  if (!gate_fits(x.shape, s.shape)) {
    MX_ERROR_MSG << name << ": s must be (N, C) or (N, C, 1, 1) for x of shape "
                 << shape_text(x.shape) << ", got " << shape_text(s.shape);
    return false;
  }
  if (add && r->shape != x.shape) {
    MX_ERROR_MSG << name << ": r must have the shape of x " << shape_text(x.shape)
                 << ", got " << shape_text(r->shape);
    return false;
  }
  if (s.dtype != x.dtype || (add && r->dtype != x.dtype) ||
      (x.dtype != mxnet::ext::kFloat32 && x.dtype != mxnet::ext::kFloat64)) {
    MX_ERROR_MSG << name << ": the inputs must all be float32 or all float64";
    return false;
  }
  if (x.ctx.dev_type != "cpu") {
    MX_ERROR_MSG << name << ": CPU only, got a tensor on " << x.ctx.dev_type;
    return false;
  }
  *planes = x.shape[0] * x.shape[1];
  *len = x.size() / (*planes > 0 ? *planes : 1);
  return true;
}

// ------------------------------------------------------------------------------ operators
// Inputs (x, s[, r]) -> y.
template <bool kAdd, bool kRelu>
MXReturnValue forward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                      const OpResource&) {
  const MXTensor& x = in->at(0);
  const MXTensor& s = in->at(1);
  const MXTensor* r = kAdd ? &in->at(2) : nullptr;
  MXTensor& y = out->at(0);
  int64_t planes, len;
  if (!check_inputs(kNames[kAdd][kRelu], kAdd, x, s, r, &planes, &len)) return MX_FAIL;
  if (x.dtype == mxnet::ext::kFloat32) {
    forward_kernel<float, kAdd, kRelu>(at<float>(x), at<float>(s), kAdd ? at<float>(*r) : nullptr,
                                       at<float>(y), planes, len);
  } else {
    forward_kernel<double, kAdd, kRelu>(at<double>(x), at<double>(s),
                                        kAdd ? at<double>(*r) : nullptr, at<double>(y),
                                        planes, len);
  }
  return MX_SUCCESS;
}

// MXNet hands a library's backward the output gradient, then the forward inputs, then the
// forward outputs: (g, x, s[, r], y) -> (dx, ds[, dr]).
template <bool kAdd, bool kRelu>
MXReturnValue backward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                       const OpResource&) {
  const MXTensor& g = in->at(0);
  const MXTensor& x = in->at(1);
  const MXTensor& s = in->at(2);
  const MXTensor* r = kAdd ? &in->at(3) : nullptr;
  const MXTensor& y = in->at(kAdd ? 4 : 3);
  int64_t planes, len;
  if (!check_inputs(kNames[kAdd][kRelu], kAdd, x, s, r, &planes, &len)) return MX_FAIL;
  if (g.shape != x.shape || g.dtype != x.dtype) {
    MX_ERROR_MSG << kNames[kAdd][kRelu] << ": the output gradient must be like x";
    return MX_FAIL;
  }
  MXTensor* dr = kAdd ? &out->at(2) : nullptr;
  if (x.dtype == mxnet::ext::kFloat32) {
    backward_kernel<float, kAdd, kRelu>(at<float>(g), at<float>(x), at<float>(s), at<float>(y),
                                        at<float>(out->at(0)), at<float>(out->at(1)),
                                        kAdd ? at<float>(*dr) : nullptr, planes, len);
  } else {
    backward_kernel<double, kAdd, kRelu>(at<double>(g), at<double>(x), at<double>(s),
                                         at<double>(y), at<double>(out->at(0)),
                                         at<double>(out->at(1)),
                                         kAdd ? at<double>(*dr) : nullptr, planes, len);
  }
  return MX_SUCCESS;
}

template <int kInputs>
MXReturnValue parse_attrs(const Attrs&, int* num_in, int* num_out) {
  *num_in = kInputs;
  *num_out = 1;
  return MX_SUCCESS;
}

// One dtype for every input and the output, float32 or float64; unknown ones (-1) are taken
// from the known ones, and stay unknown when none is.
MXReturnValue infer_type(const Attrs&, std::vector<int>* in, std::vector<int>* out) {
  int dtype = -1;
  for (int t : *in) {
    if (t == -1) continue;
    if (t != mxnet::ext::kFloat32 && t != mxnet::ext::kFloat64) {
      MX_ERROR_MSG << "cmpese native rescale: float32 or float64 inputs only, got dtype "
                   << t;
      return MX_FAIL;
    }
    if (dtype != -1 && t != dtype) {
      MX_ERROR_MSG << "cmpese native rescale: the inputs must all have one dtype";
      return MX_FAIL;
    }
    dtype = t;
  }
  for (int& t : *in) t = dtype;
  out->at(0) = dtype;
  return MX_SUCCESS;
}

// y and r have the shape of x; s is (N, C) or (N, C, 1, 1). An unknown shape arrives empty.
// The interface cannot hand an unknown shape back, so x (or, for scale_add, r) must be known;
// an unknown s becomes (N, C).
template <bool kAdd>
MXReturnValue infer_shape(const Attrs&, std::vector<std::vector<unsigned int>>* in,
                          std::vector<std::vector<unsigned int>>* out) {
  const char* name = kNames[kAdd][0];
  std::vector<unsigned int> x = in->at(0);
  if (x.empty() && kAdd) x = in->at(2);
  if (x.empty()) {
    MX_ERROR_MSG << name << ": the shape of x" << (kAdd ? " or r" : "") << " must be known";
    return MX_FAIL;
  }
  if (x.size() < 2) {
    MX_ERROR_MSG << name << ": x must be (N, C, ...), got rank " << x.size();
    return MX_FAIL;
  }
  std::vector<unsigned int>& s = in->at(1);
  if (s.empty()) s = {x[0], x[1]};
  if (!gate_fits(x, s)) {
    MX_ERROR_MSG << name << ": s must be (N, C) or (N, C, 1, 1) for x of (N, C) = ("
                 << x[0] << ", " << x[1] << ")";
    return MX_FAIL;
  }
  for (int i : {0, 2}) {
    if (i == 2 && !kAdd) break;
    std::vector<unsigned int>& t = in->at(i);
    if (t.empty()) {
      t = x;
    } else if (t != x) {
      MX_ERROR_MSG << name << ": x and r must have one shape";
      return MX_FAIL;
    }
  }
  out->at(0) = x;
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(scale)
.setParseAttrs(parse_attrs<2>)
.setInferType(infer_type)
.setInferShape(infer_shape<false>)
.setForward(forward<false, false>, "cpu")
.setBackward(backward<false, false>, "cpu");

REGISTER_OP(scale_add)
.setParseAttrs(parse_attrs<3>)
.setInferType(infer_type)
.setInferShape(infer_shape<true>)
.setForward(forward<true, false>, "cpu")
.setBackward(backward<true, false>, "cpu");

REGISTER_OP(scale_add_relu)
.setParseAttrs(parse_attrs<3>)
.setInferType(infer_type)
.setInferShape(infer_shape<true>)
.setForward(forward<true, true>, "cpu")
.setBackward(backward<true, true>, "cpu");

// MXNet calls this when it loads the library: MXNET_VERSION = major * 10000 + minor * 100 +
// patch. The lib_api.h this is built against is the 1.9 one.
MXReturnValue initialize(int version) {
  if (version >= 10900 && version < 11000) return MX_SUCCESS;
  MX_ERROR_MSG << "cmpese native rescale: built for MXNet 1.9, loaded by " << version;
  return MX_FAIL;
}
