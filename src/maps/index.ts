/**
 * src/maps: BPF-style maps with fixed-layout byte keys, allocation-free on the packet path.
 *
 * API: HashMap (BPF_MAP_TYPE_HASH), LruHashMap (LRU_HASH), LpmTrieMap
 * (LPM_TRIE), ArrayMap (ARRAY), ProgArray (PROG_ARRAY), defineLayout,
 * the BPF_* update flags and the negative E* return codes, murmur3.
 * See map.ts for the contract every map follows.
 */

export {
  BPF_ANY, BPF_NOEXIST, BPF_EXIST, ENOENT, E2BIG, EEXIST, EINVAL, ENOSPC,
  MapStats, type BpfMap, type IterateFn, type MapOptions, type MapType, type SharedMapDescriptor,
} from './map.ts';
export { murmur3 } from './hash-core.ts';
export { HashMap } from './hash.ts';
export { LruHashMap } from './lru-hash.ts';
export { LpmTrieMap, LPM_PREFIXLEN_SIZE } from './lpm-trie.ts';
export { ArrayMap, ARRAY_KEY_SIZE, type ArrayMapOptions } from './array.ts';
export { ProgArray, type ProgArrayOptions } from './prog-array.ts';
export {
  defineLayout, type FieldInfo, type FieldType, type Layout, type LayoutRecord, type LayoutSpec,
} from './key-layout.ts';
