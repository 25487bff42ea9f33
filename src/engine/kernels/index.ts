// The active kernels: native C++ when the addon is built, otherwise the TypeScript references
// (correct but about 40× slower). REFRAG_BACKEND=ref forces the references.
import { nativeAttention, refAttention } from "./attention.js";
import { nativeGemm, refGemm } from "./gemm.js";
import { nativePointwise, refPointwise } from "./pointwise.js";
import type { AttentionKernels, GemmKernels, PointwiseKernels } from "./types.js";

export type { AttentionKernels, GemmKernels, PointwiseKernels } from "./types.js";

export interface Kernels {
  gemm: GemmKernels;
  attention: AttentionKernels;
  pointwise: PointwiseKernels;
  native: boolean;
}

export const kernels: Kernels = {
  gemm: nativeGemm ?? refGemm,
  attention: nativeAttention ?? refAttention,
  pointwise: nativePointwise ?? refPointwise,
  native: nativeGemm !== null && nativeAttention !== null && nativePointwise !== null,
};

export const referenceKernels: Kernels = {
  gemm: refGemm,
  attention: refAttention,
  pointwise: refPointwise,
  native: false,
};
