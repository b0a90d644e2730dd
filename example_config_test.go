package omniq_test

import (
	"fmt"
	"log"
	"time"

	"github.com/omniqhq/omniq"
)

// Settings come from defaults, then a YAML file, then code, then OMNIQ_*
// environment variables; each layer wins over the ones before it.
func ExampleLoadConfig() {
	// testdata/config/example.yaml:
	//
	//	schema: shop
	//	queues:
	//	  emails:
	//	    max_workers: 8
	//	retry_delay: 10s
	//	log:
	//	  level: warn
	cfg, err := omniq.LoadConfig("testdata/config/example.yaml")
	if err != nil {
		log.Fatal(err)
	}
	cfg.RetryDelay = 20 * time.Second // code wins over the file

	// NewClient resolves with os.Getenv; a map stands in for it here.
	env := map[string]string{
		"OMNIQ_RETRY_DELAY":        "30s", // the environment wins over code
		"OMNIQ_LOG_LEVEL_PRODUCER": "debug",
	}
	resolved, err := cfg.Resolve(func(name string) string { return env[name] })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schema:", resolved.Schema)
	fmt.Println("emails workers:", resolved.Queues["emails"].MaxWorkers)
	fmt.Println("retry delay:", resolved.RetryDelay)
	fmt.Println("max attempts:", resolved.MaxAttempts) // a default
	fmt.Println("log level:", resolved.Log.Level, resolved.Log.Components)
	// Output:
	// schema: shop
	// emails workers: 8
	// retry delay: 30s
	// max attempts: 4
	// log level: warn map[producer:debug]
}

// A bad value is a *ConfigError naming where it came from.
func ExampleConfig_Resolve() {
	env := map[string]string{"OMNIQ_MAX_WORKERS": "many"}
	_, err := omniq.Config{}.Resolve(func(name string) string { return env[name] })
	fmt.Println(err)
	// Output:
	// omniq: invalid config OMNIQ_MAX_WORKERS "many": not an integer
}
