// A small probe around the official Java client (kafka-clients from Maven Central), run as
// a single-file program: `java -cp '.tools/kafka/libs/*' KafkaProbe.java MODE ...`.
// It uses the newest protocol versions the broker (as capped by l7mesh) advertises:
// flexible Produce/Metadata/Fetch, and prints one JSON line with the outcome.
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class KafkaProbe {
  public static void main(String[] args) {
    String mode = args[0], bootstrap = args[1], clientId = args[2], topic = args[3];
    try {
      if (mode.equals("produce")) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", clientId);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("enable.idempotence", args.length > 4 ? args[4] : "false");
        p.put("max.block.ms", "15000");
        p.put("delivery.timeout.ms", "15000");
        p.put("request.timeout.ms", "10000");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
          var md = producer.send(new ProducerRecord<>(topic, "k", "java-" + clientId)).get();
          System.out.println("{\"ok\":true,\"offset\":" + md.offset() + "}");
        }
      } else if (mode.equals("consume")) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", clientId);
        p.put("group.id", args[4]);
        // "consumer" selects the KIP-848 protocol (ConsumerGroupHeartbeat, API key 68).
        p.put("group.protocol", args.length > 5 ? args[5] : "classic");
        p.put("auto.offset.reset", "earliest");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
          consumer.subscribe(List.of(topic));
          long deadline = System.currentTimeMillis() + 20000;
          while (System.currentTimeMillis() < deadline) {
            ConsumerRecords<String, String> recs = consumer.poll(Duration.ofMillis(500));
            if (!recs.isEmpty()) {
              System.out.println("{\"ok\":true,\"count\":" + recs.count() + "}");
              return;
            }
          }
          System.out.println("{\"ok\":false,\"error\":\"Timeout\"}");
        }
      } else if (mode.equals("describe") || mode.equals("cluster") || mode.equals("alter-config")) {
        // Admin calls: describeTopics uses DescribeTopicPartitions (API key 75) on Kafka 4.x,
        // describeCluster DescribeCluster (60), incrementalAlterConfigs API key 44.
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", clientId);
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        try (Admin admin = Admin.create(p)) {
          if (mode.equals("describe")) {
            var d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            System.out.println("{\"ok\":true,\"count\":" + d.partitions().size() + "}");
            return;
          }
          if (mode.equals("cluster")) {
            admin.describeCluster().clusterId().get();
          } else {
            var resource = new org.apache.kafka.common.config.ConfigResource(org.apache.kafka.common.config.ConfigResource.Type.TOPIC, topic);
            var op = new org.apache.kafka.clients.admin.AlterConfigOp(
                new org.apache.kafka.clients.admin.ConfigEntry("retention.ms", "7200000"), org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET);
            admin.incrementalAlterConfigs(java.util.Map.of(resource, List.of(op))).all().get();
          }
          System.out.println("{\"ok\":true}");
        }
      } else {
        throw new IllegalArgumentException("unknown mode " + mode);
      }
    } catch (Exception e) {
      Throwable t = e;
      while (t.getCause() != null && !(t instanceof org.apache.kafka.common.errors.ApiException)) t = t.getCause();
      System.out.println("{\"ok\":false,\"error\":\"" + t.getClass().getSimpleName() + "\"}");
    }
  }
}
