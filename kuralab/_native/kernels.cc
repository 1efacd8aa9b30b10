// kuralab: one pass of the float32 polynomial sincos with both oscillator means.
//
// For x of shape (..., n): s = sin x, c = cos x (same shape) and ms = mean(s, -1),
// mc = mean(c, -1) (shape (...)). The sincos is the algorithm of kuralab/_fastmath.py
// (Cody--Waite reduction to [-pi/4, pi/4], cephes minimax polynomials, quadrant
// selects) evaluated once per element; XLA:CPU evaluates it once per consumer and
// makes one reduction pass per mean. Built lazily by kuralab/_native/build.py.
//
// Work is split into fixed chunks (a row group, or a block of one long row) claimed
// from an atomic counter by the calling thread and by tasks on XLA's intra-op pool;
// each chunk's partial sums go to its own slot and are added in chunk order, so the
// result does not depend on which thread ran which chunk.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr float kPio2Hi = 1.5703125f;
constexpr float kPio2Mid = 4.837512969970703125e-4f;
constexpr float kPio2Lo = 7.54978995489188216e-8f;
constexpr float kTwoOverPi = 0.63661977236758134308f;
constexpr float kS1 = -1.6666654611e-1f, kS2 = 8.3321608736e-3f, kS3 = -1.9515295891e-4f;
constexpr float kC1 = 4.166664568298827e-2f, kC2 = -1.388731625493765e-3f,
                kC3 = 2.443315711809948e-5f;
constexpr int64_t kBlock = 8192;        // elements per chunk of a long row
constexpr int64_t kSerialBelow = 16384;  // total elements under which one thread does all
constexpr int64_t kLongRow = 32768;      // a single row this long is shared among threads

// sin and cos of one float32 value (kuralab/_fastmath.py's algorithm).
#pragma omp declare simd
inline void sincos1(float xi, float* so, float* co) {
  const float k = std::nearbyint(xi * kTwoOverPi);
  const float r = ((xi - k * kPio2Hi) - k * kPio2Mid) - k * kPio2Lo;
  const float z = r * r;
  const float ps = r + r * z * (kS1 + z * (kS2 + z * kS3));
  const float pc = 1.0f - 0.5f * z + z * z * (kC1 + z * (kC2 + z * kC3));
  const int32_t q = static_cast<int32_t>(k);
  const bool swap = (q & 1) != 0;
  float si = swap ? pc : ps;
  float ci = swap ? ps : pc;
  *so = (q & 2) ? -si : si;
  *co = ((q + 1) & 2) ? -ci : ci;
}

// sin and cos of x[0:m], their sums in *ss, *sc.
inline void sincos_block(const float* __restrict x, float* __restrict s,
                         float* __restrict c, int64_t m, double* ss, double* sc) {
  float acc_s = 0.0f, acc_c = 0.0f;
#pragma omp simd reduction(+ : acc_s, acc_c)
  for (int64_t i = 0; i < m; ++i) {
    const float xi = x[i];
    const float k = std::nearbyint(xi * kTwoOverPi);
    const float r = ((xi - k * kPio2Hi) - k * kPio2Mid) - k * kPio2Lo;
    const float z = r * r;
    const float ps = r + r * z * (kS1 + z * (kS2 + z * kS3));
    const float pc = 1.0f - 0.5f * z + z * z * (kC1 + z * (kC2 + z * kC3));
    const int32_t q = static_cast<int32_t>(k);
    const bool swap = (q & 1) != 0;
    float si = swap ? pc : ps;
    float ci = swap ? ps : pc;
    si = (q & 2) ? -si : si;
    ci = ((q + 1) & 2) ? -ci : ci;
    s[i] = si;
    c[i] = ci;
    acc_s += si;
    acc_c += ci;
  }
  *ss = acc_s;
  *sc = acc_c;
}

// Chunks 0 .. chunks-1 of one kernel call, claimed in order by whichever thread asks
// next. `run_on_pool` runs them on the calling thread plus up to (pool threads - 1)
// pool tasks and returns once every chunk is done; the queue is shared (shared_ptr) so a
// pool task that starts late finds nothing left and touches no buffer.
struct ChunkQueue {
  int64_t chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};

  virtual ~ChunkQueue() = default;
  virtual void run_chunk(int64_t k) = 0;

  void drain() {
    for (;;) {
      const int64_t k = next.fetch_add(1, std::memory_order_relaxed);
      if (k >= chunks) return;
      run_chunk(k);
      done.fetch_add(1, std::memory_order_release);
    }
  }
};

// `total`: elements of the call; under kSerialBelow the calling thread does all.
void run_on_pool(ffi::ThreadPool pool, const std::shared_ptr<ChunkQueue>& q, int64_t total) {
  int64_t helpers = 0;
  if (total >= kSerialBelow && q->chunks > 1) {
    helpers = std::min<int64_t>(std::max<int64_t>(1, pool.num_threads() - 1), q->chunks - 1);
  }
  for (int64_t t = 0; t < helpers; ++t) {
    pool.Schedule([q]() { q->drain(); });
  }
  q->drain();
  while (q->done.load(std::memory_order_acquire) < q->chunks) {
    std::this_thread::yield();
  }
}

struct Work : ChunkQueue {
  const float* x;
  float* s;
  float* c;
  int64_t rows, n, rows_per_chunk, blocks_per_row;
  std::vector<double> part_s, part_c;  // one slot per (row, block)

  void run_chunk(int64_t k) override {
    if (blocks_per_row == 1) {
      const int64_t r0 = k * rows_per_chunk, r1 = std::min(rows, r0 + rows_per_chunk);
      for (int64_t r = r0; r < r1; ++r) {
        sincos_block(x + r * n, s + r * n, c + r * n, n, &part_s[r], &part_c[r]);
      }
    } else {
      const int64_t r = k / blocks_per_row, b = k % blocks_per_row;
      const int64_t i0 = b * kBlock, m = std::min(n - i0, kBlock);
      const int64_t off = r * n + i0;
      sincos_block(x + off, s + off, c + off, m, &part_s[k], &part_c[k]);
    }
  }
};

ffi::Error PhasorMeanImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::ResultBuffer<ffi::F32> s, ffi::ResultBuffer<ffi::F32> c,
                          ffi::ResultBuffer<ffi::F32> ms, ffi::ResultBuffer<ffi::F32> mc) {
  const auto dims = x.dimensions();
  if (dims.size() < 1) {
    return ffi::Error::InvalidArgument("phasor_mean: the input needs an oscillator axis");
  }
  const int64_t n = dims.back();
  const int64_t total = static_cast<int64_t>(x.element_count());
  const int64_t rows = n > 0 ? total / n : 0;
  if (n <= 0) {
    return ffi::Error::InvalidArgument("phasor_mean: empty oscillator axis");
  }
  auto w = std::make_shared<Work>();
  w->x = x.typed_data();
  w->s = s->typed_data();
  w->c = c->typed_data();
  w->rows = rows;
  w->n = n;
  w->blocks_per_row = (n + kBlock - 1) / kBlock;
  w->rows_per_chunk = w->blocks_per_row == 1 ? std::max<int64_t>(1, kBlock / n) : 1;
  w->chunks = w->blocks_per_row == 1 ? (rows + w->rows_per_chunk - 1) / w->rows_per_chunk
                                     : rows * w->blocks_per_row;
  const int64_t slots = w->blocks_per_row == 1 ? rows : rows * w->blocks_per_row;
  w->part_s.assign(slots, 0.0);
  w->part_c.assign(slots, 0.0);

  run_on_pool(pool, w, total);

  float* out_s = ms->typed_data();
  float* out_c = mc->typed_data();
  const double inv_n = 1.0 / static_cast<double>(n);
  for (int64_t r = 0; r < rows; ++r) {
    double a = 0.0, b = 0.0;
    const int64_t k0 = w->blocks_per_row == 1 ? r : r * w->blocks_per_row;
    for (int64_t j = 0; j < w->blocks_per_row; ++j) {
      a += w->part_s[k0 + j];
      b += w->part_c[k0 + j];
    }
    out_s[r] = static_cast<float>(a * inv_n);
    out_c[r] = static_cast<float>(b * inv_n);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(KuralabPhasorMean, PhasorMeanImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

// ---------------------------------------------------------------------------------
// One classical RK4 step of the mean-field Kuramoto--Sakaguchi model, per row:
//   f(y)_i = omega_i + K (cos a (c_i S - s_i C) - sin a (s_i S + c_i C)),
//   (S, C) = mean over the row of (sin y, cos y),
// with increments k = h f as in kuralab/_integrate/solvers.py (RK4.step):
//   y1 = y0 + k1/6 + k2/3 + k3/3 + k4/6, stage states y0 + k1/2, y0 + k2/2, y0 + k3.
// Inputs y0, omega (rows, n), coef (rows, 6) = [K(t0), K(t0 + h/2), K(t0 + h), h,
// cos a, sin a], each also accepted with one row shared by all. Outputs y1, k1, k4 (rows, n) and two (rows, n) scratch arrays (the
// last stage's sin and cos). Five passes over the row, each evaluating sincos once;
// rows are independent and are shared among the threads in groups.
// ---------------------------------------------------------------------------------

namespace {

struct RowArgs {
  const float* y0;
  const float* om;
  const float* coef;
  float *y1, *k1, *k4, *s, *c;
};

// Phase p of a step on elements [i0, i1) of a row. p = 0: the phasor of y0; p = 1, 2,
// 3: the increment of stage p from the stored phasor and the stage's coupled means
// (S, C), then the phasor of the next stage state; p = 4: the last increment and y1.
// Returns the sums of the new sin and cos over [i0, i1) (p < 4).
inline void mf_phase(const RowArgs& a, int p, float S, float C, int64_t i0, int64_t i1,
                     double* ss_out, double* sc_out) {
  const float h = a.coef[3], ca = a.coef[4], sa = a.coef[5];
  const float* __restrict y0 = a.y0;
  const float* __restrict om = a.om;
  float* __restrict acc = a.y1;
  float* __restrict s = a.s;
  float* __restrict c = a.c;
  float ss = 0.0f, sc = 0.0f;
  if (p == 0) {
#pragma omp simd reduction(+ : ss, sc)
    for (int64_t i = i0; i < i1; ++i) {
      float si, ci;
      sincos1(y0[i], &si, &ci);
      s[i] = si;
      c[i] = ci;
      ss += si;
      sc += ci;
    }
  } else if (p < 4) {
    const float al = p == 3 ? 1.0f : 0.5f;
    const float w = p == 1 ? 1.0f / 6.0f : 1.0f / 3.0f;
    float* __restrict k1o = a.k1;
    const float* __restrict base = p == 1 ? y0 : acc;
    if (p == 1) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float si = s[i], ci = c[i];
        k1o[i] = h * (om[i] + (ca * (ci * S - si * C) - sa * (si * S + ci * C)));
      }
    }
#pragma omp simd reduction(+ : ss, sc)
    for (int64_t i = i0; i < i1; ++i) {
      const float si = s[i], ci = c[i];
      const float k = h * (om[i] + (ca * (ci * S - si * C) - sa * (si * S + ci * C)));
      acc[i] = base[i] + w * k;
      float s2, c2;
      sincos1(y0[i] + al * k, &s2, &c2);
      s[i] = s2;
      c[i] = c2;
      ss += s2;
      sc += c2;
    }
  } else {
    float* __restrict k4o = a.k4;
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) {
      const float si = s[i], ci = c[i];
      const float k = h * (om[i] + (ca * (ci * S - si * C) - sa * (si * S + ci * C)));
      k4o[i] = k;
      acc[i] = acc[i] + (1.0f / 6.0f) * k;
    }
  }
  *ss_out = ss;
  *sc_out = sc;
}

// The coupled means (S, C) entering phase p + 1, from the block sums of phase p.
inline void stage_means(const RowArgs& a, int p, const double* bs, const double* bc,
                        int64_t blocks, int64_t n, float* S, float* C) {
  double ts = 0.0, tc = 0.0;
  for (int64_t b = 0; b < blocks; ++b) {
    ts += bs[b];
    tc += bc[b];
  }
  const float K = p == 0 ? a.coef[0] : (p < 3 ? a.coef[1] : a.coef[2]);
  *S = K * static_cast<float>(ts / static_cast<double>(n));
  *C = K * static_cast<float>(tc / static_cast<double>(n));
}

// A whole step of one row on the calling thread (block sums as in the threaded path,
// so both give the same numbers).
inline void mf_rk4_row(const RowArgs& a, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  double small_s[16], small_c[16];  // no allocation for rows up to 16 blocks
  std::vector<double> big_s, big_c;
  double* bs = small_s;
  double* bc = small_c;
  if (blocks > 16) {
    big_s.resize(blocks);
    big_c.resize(blocks);
    bs = big_s.data();
    bc = big_c.data();
  }
  float S = 0.0f, C = 0.0f;
  for (int p = 0; p < 5; ++p) {
    for (int64_t b = 0; b < blocks; ++b) {
      mf_phase(a, p, S, C, b * kBlock, std::min(n, (b + 1) * kBlock), &bs[b], &bc[b]);
    }
    if (p < 4) stage_means(a, p, bs, bc, blocks, n, &S, &C);
  }
}

// One long row shared by several threads: the blocks of each phase are claimed
// through per-block flags (thread t scans from its own end, so a thread tends to keep
// the same blocks, in its cache, from phase to phase); whoever finishes a phase's last
// block computes the means and opens the next phase. No thread ever waits for a block
// nobody has claimed, so a helper the pool never runs costs nothing but time.
struct LongRow {
  RowArgs a;
  int64_t n, blocks;
  std::vector<double> bs, bc;
  std::unique_ptr<std::atomic<int>[]> claimed;  // [5 * blocks]
  std::atomic<int64_t> done[5];
  std::atomic<int> phase{0};
  float S[5] = {0}, C[5] = {0};

  LongRow(const RowArgs& args, int64_t n_)
      : a(args), n(n_), blocks((n_ + kBlock - 1) / kBlock), bs(blocks), bc(blocks),
        claimed(new std::atomic<int>[5 * blocks]) {
    for (int64_t i = 0; i < 5 * blocks; ++i) claimed[i].store(0);
    for (auto& d : done) d.store(0);
  }

  void work(bool from_end) {
    for (int p = 0; p < 5; ++p) {
      while (phase.load(std::memory_order_acquire) < p) std::this_thread::yield();
      for (int64_t j = 0; j < blocks; ++j) {
        const int64_t b = from_end ? blocks - 1 - j : j;
        if (claimed[p * blocks + b].exchange(1, std::memory_order_relaxed)) continue;
        mf_phase(a, p, S[p], C[p], b * kBlock, std::min(n, (b + 1) * kBlock), &bs[b],
                 &bc[b]);
        if (done[p].fetch_add(1, std::memory_order_acq_rel) + 1 == blocks) {
          if (p < 4) stage_means(a, p, bs.data(), bc.data(), blocks, n, &S[p + 1], &C[p + 1]);
          phase.store(p + 1, std::memory_order_release);
        }
      }
    }
  }
};

struct RowWork : ChunkQueue {
  RowArgs base;
  int64_t rows, n, rows_per_chunk;
  int64_t y0_stride, om_stride, coef_stride;  // 0 for an input shared by all rows

  void run_chunk(int64_t k) override {
    const int64_t r0 = k * rows_per_chunk, r1 = std::min(rows, r0 + rows_per_chunk);
    for (int64_t r = r0; r < r1; ++r) {
      RowArgs a = base;
      const int64_t off = r * n;
      a.y0 += r * y0_stride; a.om += r * om_stride; a.coef += r * coef_stride;
      a.y1 += off; a.k1 += off; a.k4 += off; a.s += off; a.c += off;
      mf_rk4_row(a, n);
    }
  }
};

ffi::Error MeanFieldRK4Impl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y0,
                            ffi::Buffer<ffi::F32> omega, ffi::Buffer<ffi::F32> coef,
                            ffi::ResultBuffer<ffi::F32> y1, ffi::ResultBuffer<ffi::F32> k1,
                            ffi::ResultBuffer<ffi::F32> k4, ffi::ResultBuffer<ffi::F32> s,
                            ffi::ResultBuffer<ffi::F32> c) {
  // Under jax.vmap (vmap_method="expand_dims") an unbatched input arrives with
  // size-1 batch axes: it is shared by every row (stride 0), not copied.
  const auto dims = y1->dimensions();
  if (dims.size() < 1 || dims.back() <= 0) {
    return ffi::Error::InvalidArgument("meanfield_rk4: y0 needs a non-empty last axis");
  }
  const int64_t n = dims.back();
  const int64_t total = static_cast<int64_t>(y1->element_count());
  const int64_t rows = total / n;
  const int64_t y0_rows = static_cast<int64_t>(y0.element_count()) / n;
  const int64_t om_rows = static_cast<int64_t>(omega.element_count()) / n;
  const int64_t coef_rows = static_cast<int64_t>(coef.element_count()) / 6;
  const auto shared_or_all = [rows](int64_t r) { return r == 1 || r == rows; };
  if (y0.dimensions().back() != n || omega.dimensions().back() != n ||
      coef.dimensions().back() != 6 || !shared_or_all(y0_rows) ||
      !shared_or_all(om_rows) || !shared_or_all(coef_rows)) {
    return ffi::Error::InvalidArgument("meanfield_rk4: y0 / omega / coef shapes do not match");
  }
  auto w = std::make_shared<RowWork>();
  w->base = RowArgs{y0.typed_data(), omega.typed_data(), coef.typed_data(),
                    y1->typed_data(), k1->typed_data(), k4->typed_data(),
                    s->typed_data(), c->typed_data()};
  w->rows = rows;
  w->n = n;
  w->y0_stride = (y0_rows == rows && rows > 1) ? n : 0;
  w->om_stride = (om_rows == rows && rows > 1) ? n : 0;
  w->coef_stride = (coef_rows == rows && rows > 1) ? 6 : 0;
  w->rows_per_chunk = std::max<int64_t>(1, 4096 / n);
  w->chunks = (rows + w->rows_per_chunk - 1) / w->rows_per_chunk;
  if (rows == 1 && n >= kLongRow && pool.num_threads() >= 1) {
    auto lr = std::make_shared<LongRow>(w->base, n);
    pool.Schedule([lr]() { lr->work(true); });
    lr->work(false);
    while (lr->phase.load(std::memory_order_acquire) < 5) std::this_thread::yield();
    return ffi::Error::Success();
  }
  run_on_pool(pool, w, total);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(KuralabMeanFieldRK4, MeanFieldRK4Impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
