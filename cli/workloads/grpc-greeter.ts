// The gRPC service of the connectivity test: real gRPC framing over HTTP/2
// (@grpc/grpc-js) with JSON-encoded messages, so no .proto file ships for it.

import * as grpc from '@grpc/grpc-js';

export const GREETER_SERVICE = 'l7mesh.connectivity.Greeter';

const json = {
  serialize: (o: unknown) => Buffer.from(JSON.stringify(o)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown,
};

function unaryMethod(name: string) {
  return {
    path: `/${GREETER_SERVICE}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

export const greeterDefinition = { SayHello: unaryMethod('SayHello'), SayBye: unaryMethod('SayBye') } satisfies grpc.ServiceDefinition;
export type GreeterMethod = keyof typeof greeterDefinition;
