// go-control-plane peer for bench/xds: serves the same generated resources as
// bench/xds/ours-server.ts through go-control-plane's SnapshotCache and ADS server
// (SotW and delta), controlled over a small HTTP API by the benchmark harness.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Every simulated client shares one snapshot, as in ours-server.ts.
type oneGroup struct{}

func (oneGroup) ID(*core.Node) string { return "bench" }

func makeListener(i, gen int) *listener.Listener {
	proxy, err := anypb.New(&tcp.TcpProxy{
		StatPrefix:       fmt.Sprintf("tcp-%d-g%d", i, gen),
		ClusterSpecifier: &tcp.TcpProxy_Cluster{Cluster: "backend"},
	})
	if err != nil {
		log.Fatal(err)
	}
	return &listener.Listener{
		Name: fmt.Sprintf("listener-%d", i),
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(10000 + i)},
		}}},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: proxy},
		}}}},
	}
}

func makeCluster(i, gen int) *cluster.Cluster {
	// Only cluster-0 changes between generations (the "1 of 10,000" delta case).
	timeout := int64(1)
	if i == 0 {
		timeout = int64(1 + gen)
	}
	return &cluster.Cluster{
		Name:                 fmt.Sprintf("cluster-%d", i),
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		ConnectTimeout:       &durationpb.Duration{Seconds: timeout},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: &core.ConfigSource{
			ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		}},
	}
}

func main() {
	grpcPort := flag.Int("port", 0, "xDS gRPC port")
	controlPort := flag.Int("control-port", 0, "HTTP control port")
	flag.Parse()
	ctx := context.Background()
	cache := cachev3.NewSnapshotCache(true, oneGroup{}, nil)
	srv := serverv3.NewServer(ctx, cache, nil)
	gs := grpc.NewServer(grpc.MaxConcurrentStreams(100000), grpc.MaxSendMsgSize(256<<20))
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *grpcPort))
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(gs.Serve(lis)) }()

	mux := http.NewServeMux()
	mux.HandleFunc("/snapshot", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		nl, _ := strconv.Atoi(q.Get("listeners"))
		nc, _ := strconv.Atoi(q.Get("clusters"))
		gen, _ := strconv.Atoi(q.Get("gen"))
		ls := make([]types.Resource, 0, nl)
		for i := 0; i < nl; i++ {
			ls = append(ls, makeListener(i, gen))
		}
		cs := make([]types.Resource, 0, nc)
		for i := 0; i < nc; i++ {
			cs = append(cs, makeCluster(i, gen))
		}
		snap, err := cachev3.NewSnapshot(strconv.Itoa(gen), map[resourcev3.Type][]types.Resource{
			resourcev3.ListenerType: ls,
			resourcev3.ClusterType:  cs,
		})
		if err == nil {
			err = cache.SetSnapshot(ctx, "bench", snap)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, strconv.Itoa(gen))
	})
	mux.HandleFunc("/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		fmt.Fprint(w, "ok")
	})
	cl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *controlPort))
	if err != nil {
		log.Fatal(err)
	}
	// The harness reads the two ports from this line.
	fmt.Printf("READY grpc=%d control=%d\n", lis.Addr().(*net.TCPAddr).Port, cl.Addr().(*net.TCPAddr).Port)
	log.Fatal(http.Serve(cl, mux))
}
