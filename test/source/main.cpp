#define BOOST_TEST_MODULE pixtream source
#include <boost/test/unit_test.hpp>
