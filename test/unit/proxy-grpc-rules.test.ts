import assert from 'node:assert/strict';
import { grpcRule } from '../../l7/grpc/rules.js';
import { httpRulePermission } from '../../proxy-config/builders/rbac.js';

describe('l7/grpc: gRPC rules as HTTP rules', () => {
  it('one method: POST to the escaped path (compiled to an exact :path match)', () => {
    const r = grpcRule({ service: 'demo.Greeter', method: 'SayHello' });
    assert.deepEqual(r, { method: 'POST', path: '/demo\\.Greeter/SayHello' });
    assert.deepEqual((httpRulePermission(r) as any).and_rules.rules[0], { header: { name: ':path', string_match: { exact: '/demo.Greeter/SayHello' } } });
  });
  it('whole service and metadata', () => {
    assert.deepEqual(grpcRule({ service: 'a.B', metadata: { 'X-Tenant': 'blue' } }), { method: 'POST', path: '/a\\.B/[^/]+', headers: ['x-tenant: blue'] });
  });
  it('rejects what cannot be a service, method or metadata key, naming the field', () => {
    assert.throws(() => grpcRule({ service: 'a/b' }), /grpc\.service/);
    assert.throws(() => grpcRule({ service: 'a.B', method: 'x.*' }), /grpc\.method/);
    assert.throws(() => grpcRule({ service: 'a.B', metadata: { 'token-bin': 'x' } }), /grpc\.metadata/);
  });
});
