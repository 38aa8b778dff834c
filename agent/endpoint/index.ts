export * from './ipam.js';
export * from './cgroup.js';
export * from './pod.js';
