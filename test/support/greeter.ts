// A real gRPC service (@grpc/grpc-js over HTTP/2) with JSON-encoded messages, so no
// test-only .proto is needed: the wire is real gRPC framing, paths and status codes.
import * as grpc from '@grpc/grpc-js';

const json = {
  serialize: (o: unknown) => Buffer.from(JSON.stringify(o)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')),
};

function method(name: string, responseStream = false) {
  return {
    path: `/demo.Greeter/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

export const greeterDefinition = {
  SayHello: method('SayHello'),
  SayBye: method('SayBye'),
  /** Server stream: one message per `tick` until the client cancels. */
  Watch: method('Watch', true),
} satisfies grpc.ServiceDefinition;

export interface GreeterServer {
  port: number;
  calls: string[];
  close(): Promise<void>;
}

export async function startGreeter(host: string): Promise<GreeterServer> {
  const server = new grpc.Server();
  const calls: string[] = [];
  server.addService(greeterDefinition, {
    SayHello: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      calls.push('SayHello');
      cb(null, { message: `hello ${call.request.name}` });
    },
    SayBye: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      calls.push('SayBye');
      cb(null, { message: `bye ${call.request.name}` });
    },
    Watch: (call: grpc.ServerWritableStream<any, any>) => {
      calls.push('Watch');
      let n = 0;
      const t = setInterval(() => call.write({ n: n++ }), Number(call.request.everyMs ?? 100));
      const end = () => clearInterval(t);
      call.on('cancelled', end);
      call.on('close', end);
      call.on('error', end);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}

export const GreeterClient = grpc.makeGenericClientConstructor(greeterDefinition, 'Greeter');
export type GreeterClientT = InstanceType<typeof GreeterClient>;

export function newGreeterClient(target: string): GreeterClientT {
  return new GreeterClient(target, grpc.credentials.createInsecure());
}

export function unary(client: GreeterClientT, name: 'SayHello' | 'SayBye', request: object, timeoutMs = 3000): Promise<{ message: string }> {
  return new Promise((resolve, reject) => {
    (client as any)[name](request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: { message: string }) =>
      err ? reject(err) : resolve(res),
    );
  });
}
